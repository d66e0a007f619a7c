// Container registry for the workspace's environment images. No admin user and no anonymous pull: the
// workspace and the compute identity pull with Entra ID roles (AcrPull), so no registry password exists.

@description('Registry name (5-50 letters and digits, globally unique).')
@minLength(5)
@maxLength(50)
param name string

@description('Azure region of the registry.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Premium is needed for private endpoints, retention policies and vulnerability-scan integration.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param acrSku string = 'Premium'

@description('Public endpoint. Disabled (Premium only) when clients reach the registry through a private endpoint.')
@allowed([
  'Enabled'
  'Disabled'
])
param acrPublicNetworkAccess string = 'Disabled'

@description('Days untagged manifests are kept (Premium only).')
@minValue(0)
@maxValue(365)
param acrUntaggedRetentionDays int = 30

var acrIsPremium = acrSku == 'Premium'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: acrSku
  }
  // checkov:skip=CKV_AZURE_166:Quarantine holds every pushed image until an external scanner releases it; AML pushes and pulls its own environment images, which would never be released.
  properties: {
    adminUserEnabled: false
    // No anonymousPullEnabled: API 2023-07-01 does not have it (Bicep type data; bicep build would warn BCP037),
    // and anonymous pull is off unless turned on.
    publicNetworkAccess: acrPublicNetworkAccess
    networkRuleBypassOptions: 'AzureServices'
    dataEndpointEnabled: false
    // Zone redundancy is left to Azure: registries are zone-redundant by default where the region has zones.
    // Retention of untagged manifests exists on Premium only: other tiers get no retentionPolicy at all, as the
    // AVM module sends it (Azure/bicep-registry-modules avm/res/container-registry/registry/main.bicep:
    // `retentionPolicy: acrSku == 'Premium' ? {...} : null`).
    policies: {
      retentionPolicy: acrIsPremium ? {
        status: 'enabled'
        days: acrUntaggedRetentionDays
      } : null
    }
  }
}

@description('Resource id of the registry.')
output id string = registry.id

@description('Name of the registry.')
output name string = registry.name

@description('Login server of the registry (host name only).')
output loginServer string = registry.properties.loginServer
