// The CPU cluster pipeline jobs run on. It scales to zero when idle, so it costs nothing between runs, and
// its nodes run as the user-assigned compute identity (no SSH, no local accounts).

@description('Name of the workspace that owns the cluster.')
param workspaceName string

@description('Cluster name (2-16 letters, digits and hyphens).')
@minLength(2)
@maxLength(16)
param name string

@description('Azure region of the cluster (the workspace region).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Resource id of the user-assigned identity the nodes run as.')
param computeIdentityId string

@description('VM size of the nodes.')
param computeVmSize string = 'Standard_DS3_v2'

@description('Upper bound of the autoscaler.')
@minValue(1)
@maxValue(100)
param computeMaxNodes int = 4

@description('Low-priority (spot) nodes: much cheaper, may be pre-empted; AML re-queues the job.')
param computeLowPriority bool = false

@description('Seconds a node stays idle before the cluster scales it down.')
@minValue(60)
@maxValue(3600)
param computeIdleSeconds int = 120

@description('Public IPs on nodes. Needed without a managed network; off when the workspace has one.')
param enableNodePublicIp bool = false

resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' existing = {
  name: workspaceName
}

resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2025-06-01' = {
  parent: workspace
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${computeIdentityId}': {}
    }
  }
  properties: {
    computeType: 'AmlCompute'
    computeLocation: location
    description: 'amlops CPU cluster (scales to zero)'
    disableLocalAuth: true
    properties: {
      osType: 'Linux'
      vmSize: computeVmSize
      vmPriority: computeLowPriority ? 'LowPriority' : 'Dedicated'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: computeMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT${computeIdleSeconds}S'
      }
      remoteLoginPortPublicAccess: 'Disabled'
      enableNodePublicIp: enableNodePublicIp
      isolatedNetwork: false
    }
  }
}

@description('Name of the cluster.')
output name string = cluster.name

@description('Resource id of the cluster.')
output id string = cluster.id
