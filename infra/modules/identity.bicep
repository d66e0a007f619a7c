// Two user-assigned identities, so no password or client secret exists anywhere:
//  - compute: the identity the CPU cluster (and so every pipeline step) runs as;
//  - cicd:    the identity GitHub Actions logs in as, through OpenID Connect federated credentials.
// Their role assignments live in roles.bicep, next to the resources they grant access to.

@description('Name of the identity the compute cluster runs as.')
param computeIdentityName string

@description('Name of the identity GitHub Actions logs in as.')
param cicdIdentityName string

@description('Azure region of the identities.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('GitHub repository allowed to log in as the CI/CD identity, as <org>/<repo>. Empty: no federated credential.')
param githubRepository string = ''

@description('GitHub environments whose workflow jobs may log in (subject repo:<org>/<repo>:environment:<name>).')
param githubEnvironments array = []

@description('Further exact OIDC subjects, e.g. repo:<org>/<repo>:ref:refs/heads/main. Each one can act as the CI/CD identity.')
param githubExtraSubjects array = []

// GitHub's OIDC issuer and the audience Azure expects for workload identity federation.
var githubIssuer = 'https://token.actions.githubusercontent.com'
var tokenExchangeAudience = 'api://AzureADTokenExchange'

var environmentSubjects = [for name in githubEnvironments: 'repo:${githubRepository}:environment:${name}']
var subjects = empty(githubRepository) ? [] : concat(environmentSubjects, githubExtraSubjects)

resource computeIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: computeIdentityName
  location: location
  tags: tags
}

resource cicdIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: cicdIdentityName
  location: location
  tags: tags
}

// Azure rejects concurrent writes of federated credentials on one identity: create them one at a time.
@batchSize(1)
resource githubCredentials 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = [for subject in subjects: {
  parent: cicdIdentity
  name: 'github-${uniqueString(subject)}'
  properties: {
    issuer: githubIssuer
    subject: subject
    audiences: [
      tokenExchangeAudience
    ]
  }
}]

@description('Resource id of the compute identity.')
output computeIdentityId string = computeIdentity.id

@description('Principal (object) id of the compute identity, for role assignments.')
output computeIdentityPrincipalId string = computeIdentity.properties.principalId

@description('Client id of the compute identity (DEFAULT_IDENTITY_CLIENT_ID inside jobs).')
output computeIdentityClientId string = computeIdentity.properties.clientId

@description('Name of the CI/CD identity.')
output cicdIdentityName string = cicdIdentity.name

@description('Principal (object) id of the CI/CD identity, for role assignments.')
output cicdIdentityPrincipalId string = cicdIdentity.properties.principalId

@description('Client id of the CI/CD identity: the AZURE_CLIENT_ID variable of the GitHub repository.')
output cicdIdentityClientId string = cicdIdentity.properties.clientId

@description('The OIDC subjects trusted by the CI/CD identity.')
output githubSubjects array = subjects
