// amlops infrastructure, resource-group scope: an Azure ML workspace with its storage, Key Vault, container
// registry, monitoring, a CPU cluster that scales to zero, two user-assigned identities (compute and CI/CD,
// the latter trusted by GitHub Actions through OIDC) with least-privilege roles, and optionally an AML
// registry and private networking. Parameters per environment live in env/<env>.bicepparam.
//
// Every module defaults to the secure setting; this file relaxes network exposure only when
// privateNetworking is false (dev), and tests/static/test_bicep.py checks that prod keeps it on.
// Names: <type>-<prefix>-<env>-<suffix>, suffix = uniqueString(resource group, prefix, env, region).

targetScope = 'resourceGroup'

@description('Short name of the project, used in every resource name (2-10 lowercase letters or digits).')
@minLength(2)
@maxLength(10)
param prefix string

@description('Environment name.')
@allowed([
  'dev'
  'test'
  'prod'
])
param env string

@description('Azure region of every resource. Default: the resource group\'s region.')
param location string = resourceGroup().location

@description('Extra tags for every resource (project, environment and managed-by are always set).')
param tags object = {}

@description('Private networking: managed network for compute, public endpoints off, private endpoints for clients.')
param privateNetworking bool = true

@description('Outbound policy of the workspace managed network when privateNetworking is on.')
@allowed([
  'AllowInternetOutbound'
  'AllowOnlyApprovedOutbound'
])
param managedNetworkOutbound string = 'AllowInternetOutbound'

@description('Address space of the client virtual network (privateNetworking only).')
param vnetAddressPrefix string = '10.60.0.0/24'

@description('Private-endpoint subnet, inside vnetAddressPrefix.')
param privateEndpointSubnetPrefix string = '10.60.0.0/26'

@description('Subnet for self-hosted runners and jump boxes, inside vnetAddressPrefix.')
param clientSubnetPrefix string = '10.60.0.64/26'

@description('High-business-impact workspace: less diagnostic data to Microsoft, encrypted local scratch.')
param hbiWorkspace bool = true

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Days deleted blobs, containers and file shares stay recoverable.')
@minValue(1)
@maxValue(365)
param storageSoftDeleteDays int = 14

@description('Days a deleted Key Vault or secret stays recoverable (7-90).')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteDays int = 90

@description('Container registry tier. Premium is required for private endpoints.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param acrSku string = 'Premium'

@description('VM size of the CPU cluster nodes.')
param computeVmSize string = 'Standard_DS3_v2'

@description('Maximum number of nodes of the CPU cluster (it always scales down to zero).')
@minValue(1)
@maxValue(100)
param computeMaxNodes int = 4

@description('Low-priority (spot) nodes for the CPU cluster.')
param computeLowPriority bool = false

@description('Seconds an idle node is kept before scale-down.')
@minValue(60)
@maxValue(3600)
param computeIdleSeconds int = 120

@description('Days Log Analytics keeps data.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Daily Log Analytics ingestion cap in GB; 0 means no cap.')
@minValue(0)
param logDailyCapGb int = 0

@description('Create the alert on failed monitor runs.')
param deployMonitorAlert bool = true

@description('Experiment name of the monitoring pipeline jobs, watched by the alert.')
param monitorExperimentName string = 'amlops-monitoring'

@description('E-mail told about failed monitor runs. Empty: no action group (pass it at deploy time).')
param alertEmail string = ''

@description('GitHub repository (<org>/<repo>) whose workflows log in as the CI/CD identity. Empty: none.')
param githubRepository string = ''

@description('GitHub environments of that repository allowed to log in (subject repo:<org>/<repo>:environment:<name>).')
param githubEnvironments array = []

@description('Further exact OIDC subjects trusted by the CI/CD identity (each one can act as it).')
param githubExtraSubjects array = []

@description('Grant the CI/CD identity the rights to deploy this template (Contributor + constrained RBAC Administrator). Pass it once from a workstation; CI deploys with false.')
param ciCanDeployInfra bool = false

@description('Create an AML registry for cross-environment model promotion in this deployment.')
param deployMlRegistry bool = false

@description('Public endpoint of the AML registry. Enable it when workspaces without private networking share models through it.')
@allowed([
  'Enabled'
  'Disabled'
])
param mlRegistryPublicNetworkAccess string = 'Disabled'

@description('Principal ids of other environments\' CI/CD identities allowed to use the AML registry.')
param registryUserPrincipalIds array = []

@description('Object ids of the data scientists (Entra ID groups or users) who use the studio.')
param dataScientistPrincipalIds array = []

@description('Kind of principal in dataScientistPrincipalIds: Group or User.')
@allowed([
  'Group'
  'User'
])
param dataScientistPrincipalType string = 'Group'

var cleanPrefix = toLower(replace(prefix, '-', ''))
var baseName = '${cleanPrefix}-${env}'
var suffix = take(uniqueString(resourceGroup().id, cleanPrefix, env, location), 6)
var allTags = union(tags, {
  project: 'amlops'
  environment: env
  'managed-by': 'bicep'
})
var publicAccess = privateNetworking ? 'Disabled' : 'Enabled'
var firewallDefault = privateNetworking ? 'Deny' : 'Allow'

// Every name is fixed before the deployment starts (never a module output), so what-if can show exactly
// what a deployment would change.
var workspaceName = 'mlw-${baseName}-${suffix}'
var storageName = 'st${cleanPrefix}${env}${suffix}'
var keyVaultName = 'kv${cleanPrefix}${env}${suffix}'
var containerRegistryName = 'cr${cleanPrefix}${env}${suffix}'
var mlRegistryResourceName = 'mlreg-${baseName}-${suffix}'
var mlRegistryName = deployMlRegistry ? mlRegistryResourceName : ''
var mlRegistryId = deployMlRegistry ? resourceId('Microsoft.MachineLearningServices/registries', mlRegistryResourceName) : ''
var computeName = take('cpu-${cleanPrefix}-${env}', 16)
var computeIdentityName = 'id-${baseName}-compute-${suffix}'
var cicdIdentityName = 'id-${baseName}-cicd-${suffix}'
var vnetName = 'vnet-${baseName}-${suffix}'

module identity 'modules/identity.bicep' = {
  name: 'amlops-identity'
  params: {
    computeIdentityName: computeIdentityName
    cicdIdentityName: cicdIdentityName
    location: location
    tags: allTags
    githubRepository: githubRepository
    githubEnvironments: githubEnvironments
    githubExtraSubjects: githubExtraSubjects
  }
}

module storage 'modules/storage.bicep' = {
  name: 'amlops-storage'
  params: {
    name: storageName
    location: location
    tags: allTags
    storageSku: storageSku
    storagePublicNetworkAccess: publicAccess
    storageNetworkDefaultAction: firewallDefault
    storageSoftDeleteDays: storageSoftDeleteDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'amlops-keyvault'
  params: {
    name: keyVaultName
    location: location
    tags: allTags
    keyVaultSoftDeleteDays: keyVaultSoftDeleteDays
    keyVaultPublicNetworkAccess: publicAccess
    keyVaultNetworkDefaultAction: firewallDefault
  }
}

module acr 'modules/acr.bicep' = {
  name: 'amlops-acr'
  params: {
    name: containerRegistryName
    location: location
    tags: allTags
    acrSku: acrSku
    acrPublicNetworkAccess: publicAccess
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'amlops-monitoring'
  params: {
    baseName: baseName
    suffix: suffix
    location: location
    tags: allTags
    logRetentionDays: logRetentionDays
    logDailyCapGb: logDailyCapGb
    deployMonitorAlert: deployMonitorAlert
    monitorExperimentName: monitorExperimentName
    alertEmail: alertEmail
  }
}

module mlRegistry 'modules/mlregistry.bicep' = if (deployMlRegistry) {
  name: 'amlops-mlregistry'
  params: {
    name: mlRegistryResourceName
    location: location
    tags: allTags
    mlRegistryPublicNetworkAccess: mlRegistryPublicNetworkAccess
  }
}

module workspace 'modules/workspace.bicep' = {
  name: 'amlops-workspace'
  params: {
    name: workspaceName
    location: location
    tags: allTags
    storageAccountId: storage.outputs.id
    storageAccountName: storage.outputs.name
    dataContainerName: storage.outputs.dataContainerName
    keyVaultId: keyVault.outputs.id
    containerRegistryId: acr.outputs.id
    appInsightsId: monitoring.outputs.appInsightsId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    computeIdentityId: identity.outputs.computeIdentityId
    hbiWorkspace: hbiWorkspace
    workspacePublicNetworkAccess: publicAccess
    managedNetworkIsolationMode: privateNetworking ? managedNetworkOutbound : 'Disabled'
    mlRegistryId: mlRegistryId
    // The registry has no public endpoint exactly when privateNetworking is on: images build on the cluster.
    imageBuildCompute: privateNetworking ? computeName : ''
  }
  // The managed network's private endpoint to the AML registry needs the registry.
  dependsOn: [
    mlRegistry
  ]
}

module compute 'modules/compute.bicep' = {
  name: 'amlops-compute'
  params: {
    workspaceName: workspaceName
    name: computeName
    location: location
    tags: allTags
    computeIdentityId: identity.outputs.computeIdentityId
    computeVmSize: computeVmSize
    computeMaxNodes: computeMaxNodes
    computeLowPriority: computeLowPriority
    computeIdleSeconds: computeIdleSeconds
    // Without a managed network, AML clusters need public node IPs to reach the service.
    enableNodePublicIp: !privateNetworking
  }
  dependsOn: [
    workspace
  ]
}

module roles 'modules/roles.bicep' = {
  name: 'amlops-roles'
  params: {
    workspaceName: workspaceName
    storageAccountName: storageName
    containerRegistryName: containerRegistryName
    mlRegistryName: mlRegistryName
    computeIdentityName: computeIdentityName
    cicdIdentityName: cicdIdentityName
    ciCanDeployInfra: ciCanDeployInfra
    registryUserPrincipalIds: registryUserPrincipalIds
    dataScientistPrincipalIds: dataScientistPrincipalIds
    dataScientistPrincipalType: dataScientistPrincipalType
    workspaceReachesRegistryPrivately: privateNetworking
  }
  dependsOn: [
    identity
    workspace
    storage
    acr
    mlRegistry
  ]
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'amlops-network'
  params: {
    baseName: baseName
    suffix: suffix
    vnetName: vnetName
    location: location
    tags: allTags
    vnetAddressPrefix: vnetAddressPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    clientSubnetPrefix: clientSubnetPrefix
    workspaceId: workspace.outputs.id
    storageAccountId: storage.outputs.id
    keyVaultId: keyVault.outputs.id
    containerRegistryId: acr.outputs.id
    includeMlRegistry: deployMlRegistry
    mlRegistryId: mlRegistryId
  }
}

// Outputs feed amlops.yaml (`amlops infra deploy` writes them under azure.environments.<env>).
// Names, ids, client and principal ids only: none of them is a credential.

@description('Subscription of the deployment.')
output subscriptionId string = subscription().subscriptionId

@description('Entra ID tenant (AZURE_TENANT_ID for GitHub).')
output tenantId string = subscription().tenantId

@description('Resource group of the deployment.')
output resourceGroupName string = resourceGroup().name

@description('Region of the resources.')
output location string = location

@description('Name of the Azure ML workspace.')
output workspaceName string = workspace.outputs.name

@description('MLflow tracking URI of the workspace.')
output mlflowTrackingUri string = workspace.outputs.mlflowTrackingUri

@description('Name of the CPU compute cluster.')
output computeName string = compute.outputs.name

@description('Name of the identity-based datastore on the project data container.')
output dataDatastoreName string = workspace.outputs.dataDatastoreName

@description('Name of the storage account.')
output storageAccountName string = storage.outputs.name

@description('Name of the project data container.')
output dataContainerName string = storage.outputs.dataContainerName

@description('Name of the Key Vault.')
output keyVaultName string = keyVault.outputs.name

@description('Name of the container registry.')
output containerRegistryName string = acr.outputs.name

@description('Name of the AML registry (empty when not deployed here).')
output mlRegistryName string = mlRegistryName

@description('Name of Application Insights.')
output appInsightsName string = monitoring.outputs.appInsightsName

@description('Name of the failed-monitor-run alert rule.')
output monitorAlertName string = monitoring.outputs.monitorAlertName

@description('Client id of the compute identity.')
output computeIdentityClientId string = identity.outputs.computeIdentityClientId

@description('Client id of the CI/CD identity (AZURE_CLIENT_ID for GitHub).')
output cicdIdentityClientId string = identity.outputs.cicdIdentityClientId

@description('Principal id of the CI/CD identity (registryUserPrincipalIds of the environment that owns the registry).')
output cicdIdentityPrincipalId string = identity.outputs.cicdIdentityPrincipalId

@description('OIDC subjects trusted by the CI/CD identity.')
output githubSubjects array = identity.outputs.githubSubjects

@description('Name of the client virtual network (empty without private networking).')
output vnetName string = privateNetworking ? vnetName : ''
