// The app's user-assigned managed identity: the one credential of the host (AzureWebJobsStorage,
// the Flex deployment container, Application Insights) and of the app (AudioStorage, Speech).
// User-assigned, so its role assignments exist before the function app is first started.

@description('Name of the identity.')
param name string

@description('Region of the identity.')
param location string

@description('Tags of the identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
