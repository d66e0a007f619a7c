// The Azure ML workspace, its identity-based datastore for the project data, and its diagnostic logs.
// The system-assigned identity is the workspace's own (AML grants it what it needs on the storage account,
// Key Vault, registry and Application Insights when the workspace is created); the user-assigned compute
// identity is attached so clusters and jobs can run as it.

@description('Workspace name (3-33 letters, digits, hyphens and underscores, unique in the resource group).')
@minLength(3)
@maxLength(33)
param name string

@description('Azure region of the workspace.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Resource id of the default storage account.')
param storageAccountId string

@description('Name of the default storage account.')
param storageAccountName string

@description('Name of the blob container holding the project data.')
param dataContainerName string

@description('Resource id of the Key Vault.')
param keyVaultId string

@description('Resource id of the container registry.')
param containerRegistryId string

@description('Resource id of Application Insights.')
param appInsightsId string

@description('Resource id of the Log Analytics workspace receiving the workspace logs.')
param logAnalyticsId string

@description('Resource id of the user-assigned compute identity.')
param computeIdentityId string

@description('High business impact: less diagnostic data collected by Microsoft, encrypted local scratch disks.')
param hbiWorkspace bool = true

@description('Public endpoint of the workspace. Disabled: clients need the private endpoint (network module).')
@allowed([
  'Enabled'
  'Disabled'
])
param workspacePublicNetworkAccess string = 'Disabled'

@description('Managed virtual network of the workspace. Disabled turns the managed network off (dev).')
@allowed([
  'Disabled'
  'AllowInternetOutbound'
  'AllowOnlyApprovedOutbound'
])
param managedNetworkIsolationMode string = 'AllowInternetOutbound'

@description('Resource id of an AML registry the managed network reaches through a private endpoint. Empty: none.')
param mlRegistryId string = ''

@description('Compute cluster that builds environment images. Needed when the container registry has no public endpoint (AML cannot build in it then). Empty: AML builds in the registry.')
param imageBuildCompute string = ''

var managedNetworkOn = managedNetworkIsolationMode != 'Disabled'
// Batch deployments and parallel jobs need the storage account's queue and table endpoints besides blob and
// file ("Ensure blob, file, queue, and table private endpoints are configured for the storage accounts ...
// Batch deployments require all the four", how-to-secure-batch-endpoint.md); AML's own rules for its default
// storage cover blob and file, so queue and table are added here.
var storageOutboundRules = {
  'amlops-storage-queue': {
    type: 'PrivateEndpoint'
    category: 'UserDefined'
    destination: {
      serviceResourceId: storageAccountId
      subresourceTarget: 'queue'
    }
  }
  'amlops-storage-table': {
    type: 'PrivateEndpoint'
    category: 'UserDefined'
    destination: {
      serviceResourceId: storageAccountId
      subresourceTarget: 'table'
    }
  }
}
var registryOutboundRules = empty(mlRegistryId) ? {} : {
  'amlops-registry': {
    type: 'PrivateEndpoint'
    category: 'UserDefined'
    destination: {
      serviceResourceId: mlRegistryId
      subresourceTarget: 'amlregistry'
    }
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
    tier: 'Basic'
  }
  identity: {
    type: 'SystemAssigned,UserAssigned'
    userAssignedIdentities: {
      '${computeIdentityId}': {}
    }
  }
  // checkov:skip=CKV_AZURE_243:AML creates the managed network's private endpoints to its own storage, Key Vault and registry; user-defined PrivateEndpoint rules add the storage queue and table and the AML registry (mlRegistryId), and the client-side endpoint is in network.bicep.
  properties: {
    friendlyName: name
    description: 'amlops MLOps workspace'
    storageAccount: storageAccountId
    keyVault: keyVaultId
    containerRegistry: containerRegistryId
    applicationInsights: appInsightsId
    hbiWorkspace: hbiWorkspace
    // Default datastores use Entra ID (the caller's or a managed identity), never the account key.
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: workspacePublicNetworkAccess
    v1LegacyMode: false
    // A registry without a public endpoint cannot build images itself ("If your container registry is behind a
    // virtual network, Azure Machine Learning can't use it to directly build Docker images; use a compute
    // cluster", how-to-secure-workspace-vnet.md; AVM avm/res/machine-learning-services/workspace exposes the
    // same imageBuildCompute). The cluster is created after the workspace, by name.
    imageBuildCompute: empty(imageBuildCompute) ? null : imageBuildCompute
    provisionNetworkNow: managedNetworkOn
    managedNetwork: {
      isolationMode: managedNetworkIsolationMode
      outboundRules: managedNetworkOn ? union(storageOutboundRules, registryOutboundRules) : {}
    }
  }
}

// Identity-based datastore on the project data container: no credential is stored with it.
resource dataDatastore 'Microsoft.MachineLearningServices/workspaces/datastores@2025-06-01' = {
  parent: workspace
  name: 'amlops_data'
  properties: {
    datastoreType: 'AzureBlob'
    description: 'Project data (raw snapshots, predictions, monitor windows)'
    accountName: storageAccountName
    containerName: dataContainerName
    endpoint: environment().suffixes.storage
    protocol: 'https'
    // Studio previews data with the workspace identity, so users need no storage role to browse it.
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
    credentials: {
      credentialsType: 'None'
    }
  }
}

// Run, job and cluster events, so failed runs can be queried and alerted on (monitoring.bicep).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: workspace
  properties: {
    workspaceId: logAnalyticsId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'AmlRunStatusChangedEvent'
        enabled: true
      }
      {
        category: 'AmlComputeJobEvent'
        enabled: true
      }
      {
        category: 'AmlComputeClusterEvent'
        enabled: true
      }
    ]
  }
}

@description('Name of the workspace.')
output name string = workspace.name

@description('Resource id of the workspace.')
output id string = workspace.id

@description('Principal id of the workspace system-assigned identity.')
output principalId string = workspace.identity.principalId

@description('MLflow tracking URI of the workspace (azureml://...; no credentials in it).')
output mlflowTrackingUri string = workspace.properties.mlFlowTrackingUri

@description('Name of the identity-based datastore on the project data container.')
output dataDatastoreName string = dataDatastore.name
