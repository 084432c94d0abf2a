// BlobCreated subscriptions from the storage account's system topic to the blob extension's
// webhook of the two Event Grid-sourced blob triggers (functions audio_intake and bulk_intake).
//
// Deployed by infra/hooks/postdeploy.* after `azd deploy`, not by main.bicep: Event Grid
// validates a webhook when the subscription is created, so the functions must be deployed and
// running, and the webhook needs the host's blobs_extension system key, which only the running
// host creates. The hook reads that key with the deploying user's Azure RBAC (no secret is
// stored anywhere) and passes it here as a secure parameter, kept out of deployment history.
targetScope = 'resourceGroup'

@description('Name of the storage account\'s Event Grid system topic.')
param systemTopicName string

@description('Name of the function app.')
param functionAppName string

@description('INPUT_CONTAINER: audio_intake is triggered by blobs created there.')
param inputContainerName string

@description('REQUESTS_CONTAINER: bulk_intake is triggered by manifests created there.')
param requestsContainerName string

@secure()
@description('The host\'s blobs_extension system key (az functionapp keys list).')
param blobExtensionKey string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' existing = {
  name: functionAppName
}

var webhook = 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs'

resource audioIntake 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: 'audiointake'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhook}?functionName=Host.Functions.audio_intake&code=${blobExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${inputContainerName}/'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

resource bulkIntake 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: 'bulkintake'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhook}?functionName=Host.Functions.bulk_intake&code=${blobExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${requestsContainerName}/'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}
