// dev: cheapest footprint that still runs the whole loop. Public endpoints (Entra ID auth only, no keys),
// no managed network, Basic registry, locally redundant storage, a small low-priority cluster.
// No secret belongs here: every value below is a name, a size or a switch.
using '../main.bicep'

param prefix = 'amlops'
param env = 'dev'

param privateNetworking = false
param hbiWorkspace = false

param storageSku = 'Standard_LRS'
param storageSoftDeleteDays = 7
param keyVaultSoftDeleteDays = 7
param acrSku = 'Basic'

param computeVmSize = 'Standard_DS3_v2'
param computeMaxNodes = 2
param computeLowPriority = true
param computeIdleSeconds = 120

param logRetentionDays = 30
param logDailyCapGb = 1
param monitorExperimentName = 'amlops-monitoring'
// Set AMLOPS_ALERT_EMAIL before deploying to be e-mailed about failed monitor runs.
param alertEmail = readEnvironmentVariable('AMLOPS_ALERT_EMAIL', '')

// GitHub Actions sets GITHUB_REPOSITORY (<org>/<repo>); set it yourself when deploying from a workstation.
param githubRepository = readEnvironmentVariable('GITHUB_REPOSITORY', '')
param githubEnvironments = [
  'dev'
]
// Keep false here even when the infra workflow deploys: grant CI the deploy roles once from your machine
// (amlops infra deploy -p ciCanDeployInfra=true). CI's own deployments then leave those two assignments
// alone, which its constrained role could not re-apply (docs/infra.md, OIDC step 6).
param ciCanDeployInfra = false

param deployMlRegistry = false
