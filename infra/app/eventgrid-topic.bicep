// The optional Event Grid custom topic the app publishes its completion events to (main.bicep
// deploys it only with eventGridTopic), next to the Storage queue that always gets them. CloudEvents
// 1.0 schema, Entra ID only: local auth (access keys, SAS) is disabled, and the app's identity is
// the one publisher, as EventGrid Data Sender on this topic alone.

@description('Name of the custom topic (3-50 letters, digits and hyphens).')
param name string

@description('Region of the topic.')
param location string

@description('Tags of the topic.')
param tags object

@description('Principal id of the app\'s managed identity (EventGrid Data Sender on the topic).')
param appPrincipalId string

// EventGrid Data Sender: send events to a topic, and nothing else ("Azure built-in roles for
// Integration", https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration).
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  //checkov:skip=CKV_AZURE_193:The Flex Consumption app has no virtual network integration, so it can reach the topic only over its public endpoint; local auth is disabled, so every publish needs an Entra token of an identity holding EventGrid Data Sender, which only the app's identity does
  name: name
  location: location
  tags: tags
  // Lets subscriptions deliver to Azure destinations (queues, hubs) as the topic itself, with
  // Entra ID instead of keys ("Event delivery with a managed identity",
  // https://learn.microsoft.com/azure/event-grid/managed-service-identity).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

resource appDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = topic.name
// EVENT_GRID_TOPIC_ENDPOINT: https://<topic>.<region>-1.eventgrid.azure.net/api/events
output endpoint string = topic.properties.endpoint
