// The workspace Key Vault. Access is Azure RBAC only (no access policies); deleted vaults and secrets stay
// recoverable and cannot be purged before the retention ends. The project stores no secret in it itself:
// AML uses it for the connections a user adds later.

@description('Key Vault name (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the vault.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Days a deleted vault or secret can be recovered (7-90). Purge protection forbids an earlier purge.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteDays int = 90

@description('Public endpoint. Disabled when clients reach the vault through a private endpoint.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Disabled'

@description('Firewall default for the public endpoint; trusted Azure services always bypass it.')
@allowed([
  'Allow'
  'Deny'
])
param keyVaultNetworkDefaultAction string = 'Deny'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: keyVaultSoftDeleteDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: keyVaultPublicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: keyVaultNetworkDefaultAction
    }
  }
}

@description('Resource id of the Key Vault.')
output id string = vault.id

@description('Name of the Key Vault.')
output name string = vault.name
