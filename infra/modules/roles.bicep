// Least-privilege role assignments, each scoped to the one resource it is needed on (never the subscription).
// Built-in role definition ids (the same in every tenant) and why each is granted:
//  - AzureML Data Scientist (f6c7c914-8db3-469d-8ca1-694a8f32e121), on the workspace: submit jobs and
//    schedules, register data assets and models, create batch endpoints and deployments. It cannot create or
//    delete compute, nor change the workspace itself.
//  - Storage Blob Data Contributor (ba92f5b4-2d11-453d-a403-e96b0029c9fe), on the storage account: the
//    datastores are identity-based (shared keys are off), so whoever reads inputs, writes outputs or uploads a
//    code snapshot needs data-plane rights on blobs. The CI/CD identity also keeps the retrain ledger there
//    (`amlops loop --target azure`: a blob lease as the lock, append blobs as the logs, under
//    amlops/state/retrain/ of the default datastore), which needs nothing beyond this role.
//  - Storage Queue Data Contributor (974c5e8b-45b9-4653-ba55-5f855dd0fb88) and Storage Table Data Contributor
//    (0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3), on the storage account, for the compute identity: parallel jobs
//    and batch endpoint deployments (which run as parallel jobs) keep their mini-batch queue and progress table
//    in the workspace storage, and with shared keys off they reach them as the job's identity ("Disable shared
//    key access for your workspace's storage account", table "Scenarios for role assignments": Parallel Run
//    Step needs both roles on the user-assigned identity; MicrosoftDocs/azure-ai-docs
//    articles/machine-learning/how-to-disable-local-auth-storage.md).
//  - AcrPull (7f951dda-4ed3-4680-a7ca-43fe172d538d), on the container registry: nodes running as the compute
//    identity pull the environment images. Nobody gets push: AML builds images with its own identity.
//  - AzureML Registry User (1823dd4f-9b8c-4ab6-ab4e-7397a3684615), on the AML registry: share and read models
//    for cross-environment promotion. Promotion runs in two stages, each under one environment's CI/CD
//    identity: dev's shares its champion into the registry (this role, via registryUserPrincipalIds, plus its
//    own workspace), prod's copies it into prod (this role plus its own workspace and storage). Neither gets a
//    role in the other's workspace.
//  - Azure AI Enterprise Network Connection Approver (b556d68e-0be0-4f35-a333-ad7ee1ce17ea), on the AML registry,
//    for the workspace's system-assigned identity, only when its managed network reaches the registry through
//    a private endpoint: the workspace approves that endpoint on the registry itself (how-to-managed-network.md:
//    "add the Azure AI Enterprise Network Connection Approver role to your identity"; role id from Azure's
//    built-in roles list, "Can approve private endpoint connections to Azure AI common dependency resources").
//  - Storage File Data Privileged Contributor (69566ab7-960f-475b-8e7c-b3118f30c6bd), on the storage account,
//    for people only: studio notebooks live on the file share, which has no key access either.
//  - Contributor (b24988ac-6180-42a0-ab88-20f7382dd24c) and Role Based Access Control Administrator
//    (f58310d9-a9f6-439a-9e8d-f62e7b41a168), on the resource group, only with ciCanDeployInfra: let the CI/CD
//    identity run this template. A condition limits the roles it may assign or remove to the ones listed here.
// The workspace's system-assigned identity is not granted anything here: AML assigns its roles on the
// dependent resources itself when it creates the workspace.

@description('Name of the workspace.')
param workspaceName string

@description('Name of the storage account.')
param storageAccountName string

@description('Name of the container registry.')
param containerRegistryName string

@description('Name of the AML registry. Empty: no registry in this deployment.')
param mlRegistryName string = ''

@description('Name of the compute identity (user-assigned, same resource group).')
param computeIdentityName string

@description('Name of the CI/CD identity (user-assigned, same resource group).')
param cicdIdentityName string

@description('Also let the CI/CD identity deploy this template (Contributor + constrained RBAC Administrator on the group).')
param ciCanDeployInfra bool = false

@description('Principal ids of other environments\' CI/CD identities that may share models through the AML registry.')
param registryUserPrincipalIds array = []

@description('Object ids of the data scientists (Entra ID groups or users) using the workspace studio.')
param dataScientistPrincipalIds array = []

@description('Kind of principal in dataScientistPrincipalIds: Group or User.')
@allowed([
  'Group'
  'User'
])
param dataScientistPrincipalType string = 'Group'

@description('The workspace managed network reaches the AML registry through a private endpoint it must approve.')
param workspaceReachesRegistryPrivately bool = false

var roleIds = {
  azureMlDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageFileDataPrivilegedContributor: '69566ab7-960f-475b-8e7c-b3118f30c6bd'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  networkConnectionApprover: 'b556d68e-0be0-4f35-a333-ad7ee1ce17ea'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  azureMlRegistryUser: '1823dd4f-9b8c-4ab6-ab4e-7397a3684615'
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
  rbacAdministrator: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
}

// The only roles the CI/CD identity may hand out (or remove) when it deploys this template.
var delegableRoles = join([
  roleIds.azureMlDataScientist
  roleIds.storageBlobDataContributor
  roleIds.storageFileDataPrivilegedContributor
  roleIds.storageQueueDataContributor
  roleIds.storageTableDataContributor
  roleIds.networkConnectionApprover
  roleIds.acrPull
  roleIds.azureMlRegistryUser
], ', ')
var writeClause = '(!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${delegableRoles}})'
var deleteClause = '(!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${delegableRoles}})'
var rbacCondition = '(${writeClause}) AND (${deleteClause})'

var hasMlRegistry = !empty(mlRegistryName)
var otherRegistryUsers = hasMlRegistry ? registryUserPrincipalIds : []
var approveRegistryEndpoint = hasMlRegistry && workspaceReachesRegistryPrivately

// Identities are referenced by name: assignment names (guid of scope, identity and role) are then known
// before the deployment starts, which keeps what-if exact.
resource computeIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: computeIdentityName
}

resource cicdIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: cicdIdentityName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' existing = {
  name: workspaceName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource containerRegistry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: containerRegistryName
}

resource mlRegistry 'Microsoft.MachineLearningServices/registries@2025-06-01' existing = if (hasMlRegistry) {
  name: mlRegistryName
}

// --- compute identity: what pipeline steps running on the cluster need ---

resource computeBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, computeIdentity.id, roleIds.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataContributor)
    principalId: computeIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops compute: read inputs and write outputs through identity-based datastores'
  }
}

// Parallel jobs and batch deployments (which run as parallel jobs): mini-batch queue and progress table.
resource computeQueueData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, computeIdentity.id, roleIds.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageQueueDataContributor)
    principalId: computeIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops compute: parallel jobs and batch deployments queue their mini-batches (shared keys are off)'
  }
}

resource computeTableData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, computeIdentity.id, roleIds.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: computeIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops compute: parallel jobs and batch deployments track mini-batch progress (shared keys are off)'
  }
}

resource computeAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(containerRegistry.id, computeIdentity.id, roleIds.acrPull)
  scope: containerRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.acrPull)
    principalId: computeIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops compute: pull environment images'
  }
}

resource computeDataScientist 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, computeIdentity.id, roleIds.azureMlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.azureMlDataScientist)
    principalId: computeIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops compute: log MLflow runs and register models from pipeline steps'
  }
}

// --- CI/CD identity: what the GitHub workflows need ---

resource cicdDataScientist 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, cicdIdentity.id, roleIds.azureMlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.azureMlDataScientist)
    principalId: cicdIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops CI/CD: submit pipelines and schedules, register models, deploy batch endpoints'
  }
}

resource cicdBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, cicdIdentity.id, roleIds.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataContributor)
    principalId: cicdIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops CI/CD: upload code snapshots and data to identity-based datastores; the retrain ledger'
  }
}

resource cicdRegistryUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasMlRegistry) {
  name: guid(mlRegistry!.id, cicdIdentity.id, roleIds.azureMlRegistryUser)
  scope: mlRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.azureMlRegistryUser)
    principalId: cicdIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops CI/CD: share and promote models through the AML registry'
  }
}

resource otherRegistryUsersRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in otherRegistryUsers: {
  name: guid(mlRegistry!.id, principalId, roleIds.azureMlRegistryUser)
  scope: mlRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.azureMlRegistryUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'amlops CI/CD of another environment: use models shared through the AML registry'
  }
}]

// The workspace's managed network creates a private endpoint to the registry; its identity approves it.
resource workspaceRegistryApprover 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (approveRegistryEndpoint) {
  name: guid(mlRegistry!.id, workspace.id, roleIds.networkConnectionApprover)
  scope: mlRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.networkConnectionApprover)
    principalId: workspace.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops workspace: approve its managed network private endpoint to the AML registry'
  }
}

resource cicdContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (ciCanDeployInfra) {
  name: guid(resourceGroup().id, cicdIdentity.id, roleIds.contributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.contributor)
    principalId: cicdIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops CI/CD: deploy the infra template to this resource group'
  }
}

resource cicdRbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (ciCanDeployInfra) {
  name: guid(resourceGroup().id, cicdIdentity.id, roleIds.rbacAdministrator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.rbacAdministrator)
    principalId: cicdIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'amlops CI/CD: re-apply only the role assignments of this template'
    condition: rbacCondition
    conditionVersion: '2.0'
  }
}

// --- people: data scientists working in the studio ---

resource peopleDataScientist 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in dataScientistPrincipalIds: {
  name: guid(workspace.id, principalId, roleIds.azureMlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.azureMlDataScientist)
    principalId: principalId
    principalType: dataScientistPrincipalType
    description: 'amlops data scientists: work in the studio'
  }
}]

resource peopleBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in dataScientistPrincipalIds: {
  name: guid(storage.id, principalId, roleIds.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataContributor)
    principalId: principalId
    principalType: dataScientistPrincipalType
    description: 'amlops data scientists: read and write data through identity-based datastores'
  }
}]

resource peopleFileData 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in dataScientistPrincipalIds: {
  name: guid(storage.id, principalId, roleIds.storageFileDataPrivilegedContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageFileDataPrivilegedContributor)
    principalId: principalId
    principalType: dataScientistPrincipalType
    description: 'amlops data scientists: notebooks on the workspace file share'
  }
}]

@description('Role definition ids granted by this module, by purpose (for documentation and tests).')
output roleDefinitionIds object = roleIds
