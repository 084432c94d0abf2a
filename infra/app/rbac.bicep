// Data-plane roles on the storage account and Application Insights, for the app's identity
// and (optionally) the deploying principal. No management role is granted: none of these
// can list keys, change the account or assign roles. The Speech role is in speech-access.bicep.

@description('Name of the storage account.')
param storageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Principal id of the app\'s managed identity.')
param appPrincipalId string

@description('Object id of the deploying principal; empty for none.')
param userPrincipalId string

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Principal type of userPrincipalId.')
param userPrincipalType string

// Storage Blob Data Owner: the Functions host's documented role for an identity-based
// AzureWebJobsStorage and for the blob trigger (leases, receipts in azure-webjobs-hosts, keys in
// azure-webjobs-secrets). It also covers the Flex deployment container (Contributor would do)
// and the app's reads and writes; Contributor lacks blob index tags and ACL operations.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
// Storage Queue Data Contributor: the blob trigger's poison queue (webjobs-blobtrigger-poison).
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
// Storage Table Data Contributor: the job ledger, and the host's diagnostic events.
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
// Storage Blob Delegator: the user delegation key behind the SAS handed to Speech. Blob Data
// Owner includes it today; it is granted on its own so signing SAS does not hang on the
// broader role if that is ever narrowed to containers.
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a' // Storage Blob Delegator
// Monitoring Metrics Publisher: telemetry to an Application Insights with local auth off.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher

var storageRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
  storageBlobDelegator
]

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in storageRoles: {
    name: guid(storage.id, appPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource userStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in (empty(userPrincipalId) ? [] : storageRoles): {
    name: guid(storage.id, userPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: userPrincipalId
      principalType: userPrincipalType
    }
  }
]

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(applicationInsights.id, userPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
