// amlops infrastructure, subscription scope: creates the resource group (when asked) and deploys main.bicep
// into it. Use it when the deploying identity may create resource groups; otherwise create the group once
// and deploy main.bicep at resource-group scope (see docs/infra.md).
// Its parameters are main.bicep's, passed through unchanged (tests/static/test_bicep.py keeps them in step),
// plus the resource group's name and whether to create it.

targetScope = 'subscription'

@description('Resource group to deploy into. Default: rg-<prefix>-<env>.')
param resourceGroupName string = ''

@description('Create (or update the tags of) the resource group. False: it must exist already.')
param createResourceGroup bool = true

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

@description('Azure region of every resource. Default: the deployment\'s region (az deployment sub create --location).')
param location string = deployment().location

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

var groupName = empty(resourceGroupName) ? 'rg-${toLower(prefix)}-${env}' : resourceGroupName
var groupTags = union(tags, {
  project: 'amlops'
  environment: env
  'managed-by': 'bicep'
})

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createResourceGroup) {
  name: groupName
  location: location
  tags: groupTags
}

module main 'main.bicep' = {
  name: 'amlops-main'
  scope: resourceGroup(groupName)
  params: {
    prefix: prefix
    env: env
    location: location
    tags: tags
    privateNetworking: privateNetworking
    managedNetworkOutbound: managedNetworkOutbound
    vnetAddressPrefix: vnetAddressPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    clientSubnetPrefix: clientSubnetPrefix
    hbiWorkspace: hbiWorkspace
    storageSku: storageSku
    storageSoftDeleteDays: storageSoftDeleteDays
    keyVaultSoftDeleteDays: keyVaultSoftDeleteDays
    acrSku: acrSku
    computeVmSize: computeVmSize
    computeMaxNodes: computeMaxNodes
    computeLowPriority: computeLowPriority
    computeIdleSeconds: computeIdleSeconds
    logRetentionDays: logRetentionDays
    logDailyCapGb: logDailyCapGb
    deployMonitorAlert: deployMonitorAlert
    monitorExperimentName: monitorExperimentName
    alertEmail: alertEmail
    githubRepository: githubRepository
    githubEnvironments: githubEnvironments
    githubExtraSubjects: githubExtraSubjects
    ciCanDeployInfra: ciCanDeployInfra
    deployMlRegistry: deployMlRegistry
    mlRegistryPublicNetworkAccess: mlRegistryPublicNetworkAccess
    registryUserPrincipalIds: registryUserPrincipalIds
    dataScientistPrincipalIds: dataScientistPrincipalIds
    dataScientistPrincipalType: dataScientistPrincipalType
  }
  dependsOn: [
    group
  ]
}

@description('Subscription of the deployment.')
output subscriptionId string = main.outputs.subscriptionId

@description('Entra ID tenant (AZURE_TENANT_ID for GitHub).')
output tenantId string = main.outputs.tenantId

@description('Resource group of the deployment.')
output resourceGroupName string = main.outputs.resourceGroupName

@description('Region of the resources.')
output location string = main.outputs.location

@description('Name of the Azure ML workspace.')
output workspaceName string = main.outputs.workspaceName

@description('MLflow tracking URI of the workspace.')
output mlflowTrackingUri string = main.outputs.mlflowTrackingUri

@description('Name of the CPU compute cluster.')
output computeName string = main.outputs.computeName

@description('Name of the identity-based datastore on the project data container.')
output dataDatastoreName string = main.outputs.dataDatastoreName

@description('Name of the storage account.')
output storageAccountName string = main.outputs.storageAccountName

@description('Name of the project data container.')
output dataContainerName string = main.outputs.dataContainerName

@description('Name of the Key Vault.')
output keyVaultName string = main.outputs.keyVaultName

@description('Name of the container registry.')
output containerRegistryName string = main.outputs.containerRegistryName

@description('Name of the AML registry (empty when not deployed here).')
output mlRegistryName string = main.outputs.mlRegistryName

@description('Name of Application Insights.')
output appInsightsName string = main.outputs.appInsightsName

@description('Name of the failed-monitor-run alert rule.')
output monitorAlertName string = main.outputs.monitorAlertName

@description('Client id of the compute identity.')
output computeIdentityClientId string = main.outputs.computeIdentityClientId

@description('Client id of the CI/CD identity (AZURE_CLIENT_ID for GitHub).')
output cicdIdentityClientId string = main.outputs.cicdIdentityClientId

@description('Principal id of the CI/CD identity (registryUserPrincipalIds of the environment that owns the registry).')
output cicdIdentityPrincipalId string = main.outputs.cicdIdentityPrincipalId

@description('OIDC subjects trusted by the CI/CD identity.')
output githubSubjects array = main.outputs.githubSubjects

@description('Name of the client virtual network (empty without private networking).')
output vnetName string = main.outputs.vnetName
