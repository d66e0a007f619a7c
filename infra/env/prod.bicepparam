// prod: private networking on (managed network for compute, no public endpoints, private endpoints and DNS
// for clients), geo-redundant storage, Premium registry, a bigger dedicated cluster, the AML registry that
// dev shares models into, and longer log retention.
// No secret belongs here: every value below is a name, a size or a switch.
using '../main.bicep'

param prefix = 'amlops'
param env = 'prod'

param privateNetworking = true
// AllowOnlyApprovedOutbound also blocks PyPI/conda during image builds unless FQDN rules (and the managed
// firewall they bring, billed per hour) are added: see docs/infra.md.
param managedNetworkOutbound = 'AllowInternetOutbound'
param vnetAddressPrefix = '10.60.0.0/24'
param privateEndpointSubnetPrefix = '10.60.0.0/26'
param clientSubnetPrefix = '10.60.0.64/26'
param hbiWorkspace = true

param storageSku = 'Standard_GRS'
param storageSoftDeleteDays = 30
param keyVaultSoftDeleteDays = 90
param acrSku = 'Premium'

param computeVmSize = 'Standard_D8s_v3'
param computeMaxNodes = 8
param computeLowPriority = false
param computeIdleSeconds = 300

param logRetentionDays = 90
param logDailyCapGb = 0
param monitorExperimentName = 'amlops-monitoring'
// Set AMLOPS_ALERT_EMAIL before deploying to be e-mailed about failed monitor runs.
param alertEmail = readEnvironmentVariable('AMLOPS_ALERT_EMAIL', '')

// GitHub Actions sets GITHUB_REPOSITORY (<org>/<repo>); set it yourself when deploying from a workstation.
param githubRepository = readEnvironmentVariable('GITHUB_REPOSITORY', '')
param githubEnvironments = [
  'prod'
]
// Keep false here even when the infra workflow deploys: grant CI the deploy roles once from your machine
// (amlops infra deploy -p ciCanDeployInfra=true). CI's own deployments then leave those two assignments
// alone, which its constrained role could not re-apply (docs/infra.md, OIDC step 6).
param ciCanDeployInfra = false

// The registry lives with prod; list dev's CI/CD principal id (output cicdIdentityPrincipalId of the dev
// deployment) here so dev can share the models it validated.
param deployMlRegistry = true
// dev has no private network, so it reaches the registry on its public endpoint (Entra ID roles still
// decide who may read or write); prod's workspace reaches it through a managed private endpoint.
param mlRegistryPublicNetworkAccess = 'Enabled'
param registryUserPrincipalIds = []
