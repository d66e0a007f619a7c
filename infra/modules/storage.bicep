// The workspace's default storage account: Entra ID only, no anonymous access, TLS 1.2, soft delete.
// Every default below is the secure choice; main.bicep relaxes network access for dev only.

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the account.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Replication. GRS keeps a copy in the paired region; dev may use Standard_LRS to save cost.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Shared-key (account key and account SAS) authorisation. Off: every caller needs an Entra ID role.')
param allowSharedKeyAccess bool = false

@description('Public endpoint. Disabled when clients reach the account through private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Disabled'

@description('Firewall default for the public endpoint; trusted Azure services always bypass it.')
@allowed([
  'Allow'
  'Deny'
])
param storageNetworkDefaultAction string = 'Deny'

@description('Days deleted blobs and containers can be restored (soft delete).')
@minValue(1)
@maxValue(365)
param storageSoftDeleteDays int = 14

@description('Blob container for the project data (raw snapshots, predictions, monitor windows).')
param dataContainerName string = 'amlops'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: allowSharedKeyAccess
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    allowedCopyScope: 'AAD'
    // AML's default storage must be a flat namespace account.
    isHnsEnabled: false
    publicNetworkAccess: storagePublicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: storageNetworkDefaultAction
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: storageSoftDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: storageSoftDeleteDays
    }
  }
}

// AML keeps code snapshots on the file share; deleted shares stay recoverable too.
resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: {
      enabled: true
      days: storageSoftDeleteDays
    }
  }
}

resource dataContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: dataContainerName
  properties: {
    publicAccess: 'None'
  }
}

@description('Resource id of the storage account.')
output id string = account.id

@description('Name of the storage account.')
output name string = account.name

@description('Name of the project data container.')
output dataContainerName string = dataContainer.name

@description('Blob endpoint of the account (no credentials in it).')
output blobEndpoint string = account.properties.primaryEndpoints.blob
