// The Event Grid system topic of the storage account. Its subscriptions (BlobCreated to the
// two intake functions) need the function app's blobs_extension key and a live webhook, so
// the postdeploy hook deploys them from eventgrid-subscriptions.bicep.

@description('Name of the system topic.')
param name string

@description('Region of the system topic (the storage account\'s).')
param location string

@description('Tags of the system topic.')
param tags object

@description('Name of the storage account whose events the topic carries.')
param storageAccountName string

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
