// Optional Azure ML registry: one place that dev and prod workspaces share models through, so prod deploys
// the very model version dev validated (promotion copies nothing by hand). AML creates and manages the
// registry's own storage account and container registry in a managed resource group.

@description('Registry name (3-33 letters, digits, hyphens and underscores).')
@minLength(3)
@maxLength(33)
param name string

@description('Primary Azure region of the registry.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Public endpoint. Disabled: workspaces reach it through managed-network private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param mlRegistryPublicNetworkAccess string = 'Disabled'

@description('Replication of the registry-managed storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param mlRegistryStorageSku string = 'Standard_GRS'

resource mlRegistry 'Microsoft.MachineLearningServices/registries@2025-06-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publicNetworkAccess: mlRegistryPublicNetworkAccess
    regionDetails: [
      {
        location: location
        storageAccountDetails: [
          {
            systemCreatedStorageAccount: {
              storageAccountType: mlRegistryStorageSku
              storageAccountHnsEnabled: false
              allowBlobPublicAccess: false
            }
          }
        ]
        acrDetails: [
          {
            systemCreatedAcrAccount: {
              // Registries require a Premium container registry.
              acrAccountSku: 'Premium'
            }
          }
        ]
      }
    ]
  }
}

@description('Name of the registry.')
output name string = mlRegistry.name

@description('Resource id of the registry.')
output id string = mlRegistry.id
