// Log Analytics + workspace-based Application Insights, and the alert on failed monitor runs.
// The workspace module sends AML's job events (AmlComputeJobEvent, among others) to this Log Analytics
// workspace; the alert counts failed jobs of the monitoring experiment there.

@description('Base of the resource names: <prefix>-<env>.')
param baseName string

@description('Short unique suffix (uniqueString of the resource group, prefix, env and region).')
param suffix string

@description('Azure region of the resources.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Days Log Analytics keeps data (30 is included in the ingestion price).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Daily ingestion cap in GB; 0 means no cap.')
@minValue(0)
param logDailyCapGb int = 0

@description('Create the scheduled-query alert on failed monitor runs.')
param deployMonitorAlert bool = true

@description('Experiment name of the monitoring pipeline jobs (experiment_name in pipelines/monitoring.yml).')
param monitorExperimentName string = 'amlops-monitoring'

@description('E-mail address told about failed monitor runs. Empty: no action group; the alert still fires in Azure Monitor.')
param alertEmail string = ''

var hasActionGroup = deployMonitorAlert && !empty(alertEmail)
var actionGroupName = 'ag-${baseName}-${suffix}'
var alertName = 'alert-${baseName}-monitor-failed-${suffix}'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${baseName}-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    workspaceCapping: {
      dailyQuotaGb: logDailyCapGb > 0 ? logDailyCapGb : -1
    }
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${baseName}-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    IngestionMode: 'LogAnalytics'
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (hasActionGroup) {
  name: actionGroupName
  // Action groups are global resources.
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take(replace(baseName, '-', ''), 12)
    enabled: true
    emailReceivers: [
      {
        name: 'monitor-owner'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// One alert per evaluation window in which at least one run of the monitoring experiment failed.
resource monitorFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (deployMonitorAlert) {
  name: alertName
  location: location
  tags: tags
  properties: {
    displayName: 'amlops ${baseName}: monitor run failed'
    description: 'A run of the ${monitorExperimentName} experiment ended in Failed: drift and performance are not being watched.'
    severity: 2
    enabled: true
    scopes: [
      logs.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    autoMitigate: false
    // The job-event table exists only once the workspace has run something; do not reject the rule before.
    // (The columns the query uses are checked against the table's documented columns in tests/static.)
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          // AmlRunStatusChangedEvent has no experiment column (its columns: learn.microsoft.com/azure/azure-monitor/
          // reference/tables/amlrunstatuschangedevent), so a filter on one would match nothing, silently with
          // skipQueryValidation. AmlComputeJobEvent has ExperimentName and EventType "JobFailed"
          // (reference/tables/amlcomputejobevent; sample query "Get failed jobs", reference/queries/amlcomputejobevent).
          query: 'AmlComputeJobEvent | where EventType == "JobFailed" | where ExperimentName == "${monitorExperimentName}"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      // By id rather than through the (conditional) symbol, so no null access is ever compiled.
      actionGroups: hasActionGroup ? [
        resourceId('Microsoft.Insights/actionGroups', actionGroupName)
      ] : []
    }
  }
  dependsOn: [
    actionGroup
  ]
}

@description('Resource id of the Log Analytics workspace.')
output logAnalyticsId string = logs.id

@description('Name of the Log Analytics workspace.')
output logAnalyticsName string = logs.name

@description('Resource id of Application Insights.')
output appInsightsId string = appInsights.id

@description('Name of Application Insights.')
output appInsightsName string = appInsights.name

@description('Name of the failed-monitor-run alert rule (empty when not deployed).')
output monitorAlertName string = deployMonitorAlert ? alertName : ''
