// Private networking (privateNetworking = true): the client side of it. The workspace's managed virtual
// network (workspace.bicep) gives compute private access to storage, Key Vault and the registries; this
// module gives *people and CI runners* private access: a virtual network with private endpoints for the
// workspace, storage (blob, file), Key Vault, the container registry and the AML registry, and the private
// DNS zones that make the usual host names resolve to them. Put a self-hosted runner or a jump box in the
// clients subnet, or peer this network with yours. The clients subnet has no default outbound access (Azure
// retires it), so a NAT gateway gives it egress: a runner must reach GitHub, PyPI and Entra ID.

@description('Base of the resource names: <prefix>-<env>.')
param baseName string

@description('Name of the client virtual network.')
param vnetName string

@description('Short unique suffix (uniqueString of the resource group, prefix, env and region).')
param suffix string

@description('Azure region of the network.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Address space of the virtual network.')
param vnetAddressPrefix string = '10.60.0.0/24'

@description('Subnet of the private endpoints (inside the address space).')
param privateEndpointSubnetPrefix string = '10.60.0.0/26'

@description('Subnet for clients: self-hosted CI runners, jump boxes (inside the address space).')
param clientSubnetPrefix string = '10.60.0.64/26'

@description('Resource id of the workspace.')
param workspaceId string

@description('Resource id of the storage account.')
param storageAccountId string

@description('Resource id of the Key Vault.')
param keyVaultId string

@description('Resource id of the container registry (Premium).')
param containerRegistryId string

@description('Add a private endpoint for the AML registry.')
param includeMlRegistry bool = false

@description('Resource id of the AML registry (used with includeMlRegistry).')
param mlRegistryId string = ''

// Private DNS zone names of each service (public cloud names; storage and ACR follow the cloud in use).
var amlApiZone = 'privatelink.api.azureml.ms'
var amlNotebooksZone = 'privatelink.notebooks.azure.net'
var blobZone = 'privatelink.blob.${environment().suffixes.storage}'
var fileZone = 'privatelink.file.${environment().suffixes.storage}'
var vaultZone = 'privatelink.vaultcore.azure.net'
var acrZone = 'privatelink${environment().suffixes.acrLoginServer}'
var zoneNames = [
  amlApiZone
  amlNotebooksZone
  blobZone
  fileZone
  vaultZone
  acrZone
]

var serviceEndpoints = [
  {
    name: 'workspace'
    groupId: 'amlworkspace'
    zones: [
      amlApiZone
      amlNotebooksZone
    ]
  }
  {
    name: 'blob'
    groupId: 'blob'
    zones: [
      blobZone
    ]
  }
  {
    name: 'file'
    groupId: 'file'
    zones: [
      fileZone
    ]
  }
  {
    name: 'vault'
    groupId: 'vault'
    zones: [
      vaultZone
    ]
  }
  {
    name: 'acr'
    groupId: 'registry'
    zones: [
      acrZone
    ]
  }
]
var registryEndpoints = includeMlRegistry ? [
  {
    name: 'mlregistry'
    groupId: 'amlregistry'
    zones: [
      amlApiZone
    ]
  }
] : []
var endpoints = concat(serviceEndpoints, registryEndpoints)
// Kept apart from the endpoint list: the names and the number of endpoints must not depend on values that
// are only known during the deployment (resource ids), or what-if could not show them.
var endpointTargets = {
  workspace: workspaceId
  blob: storageAccountId
  file: storageAccountId
  vault: keyVaultId
  acr: containerRegistryId
  mlregistry: mlRegistryId
}

// Only Azure's default rules (no inbound from the internet); attached so teams can add their own rules.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${baseName}-${suffix}'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

// Egress for the clients subnet (self-hosted GitHub runners need github.com, the Actions service and PyPI):
// explicit outbound through a NAT gateway, since defaultOutboundAccess is off on the subnet.
resource natPublicIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: 'pip-${baseName}-nat-${suffix}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource natGateway 'Microsoft.Network/natGateways@2024-05-01' = {
  name: 'ng-${baseName}-${suffix}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: natPublicIp.id
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        vnetAddressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Enabled'
          networkSecurityGroup: {
            id: nsg.id
          }
        }
      }
      {
        name: 'snet-clients'
        properties: {
          addressPrefix: clientSubnetPrefix
          defaultOutboundAccess: false
          natGateway: {
            id: natGateway.id
          }
          networkSecurityGroup: {
            id: nsg.id
          }
        }
      }
    ]
  }
}

resource dnsZones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for zone in zoneNames: {
  name: zone
  // Private DNS zones are global resources.
  location: 'global'
  tags: tags
}]

resource dnsLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (zone, i) in zoneNames: {
  parent: dnsZones[i]
  name: 'link-${baseName}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for ep in endpoints: {
  name: 'pe-${baseName}-${ep.name}-${suffix}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: vnet.properties.subnets[0].id
    }
    privateLinkServiceConnections: [
      {
        name: ep.name
        properties: {
          privateLinkServiceId: endpointTargets[ep.name]
          groupIds: [
            ep.groupId
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (ep, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [for zone in ep.zones: {
      name: replace(zone, '.', '-')
      properties: {
        privateDnsZoneId: resourceId('Microsoft.Network/privateDnsZones', zone)
      }
    }]
  }
  dependsOn: [
    dnsZones
  ]
}]

@description('Resource id of the virtual network.')
output vnetId string = vnet.id

@description('Name of the virtual network.')
output vnetName string = vnet.name

@description('Resource id of the subnet for self-hosted runners and jump boxes.')
output clientSubnetId string = vnet.properties.subnets[1].id
