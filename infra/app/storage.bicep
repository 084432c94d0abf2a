// One storage account for the host (AzureWebJobsStorage), the Flex deployment package and the
// app's data (the AudioStorage connection). Shared keys are off: every caller, the platform
// included, authenticates with Entra ID, and SAS handed to Speech are user-delegation SAS.

@description('Name of the storage account (3-24 lowercase letters and digits).')
param name string

@description('Region of the storage account.')
param location string

@description('Tags of the storage account.')
param tags object

@description('Container that receives audio to transcribe (INPUT_CONTAINER).')
param inputContainerName string

@description('Container that receives bulk transcription manifests (REQUESTS_CONTAINER).')
param requestsContainerName string

@description('Container the transcripts are written to (OUTPUT_CONTAINER).')
param outputContainerName string

@description('Container of the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Table of the job ledger (LEDGER_TABLE).')
param ledgerTableName string

@description('Queue the app publishes its completion events to (EVENTS_QUEUE).')
param eventsQueueName string

@minValue(0)
@description('Delete input audio this many days after its last modification; 0 disables the rule.')
param audioRetentionDays int

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  //checkov:skip=CKV_AZURE_35:Speech fetches audio through user-delegation SAS from its own service addresses, which no network rule or trusted-service bypass admits; shared keys are off, so every request carries an Entra token or a user-delegation SAS
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: the Flex app has no virtual network and Speech must reach the audio; anonymous access and shared keys are disabled
  //checkov:skip=CKV_AZURE_206:Standard_LRS keeps three synchronous copies at the lowest at-rest price; choose Standard_ZRS or GZRS where the audio must survive a zone or region outage
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    // An accidental delete or overwrite of audio or transcripts can be undone for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: inputContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource requestsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: requestsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: outputContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2024-01-01' = {
  parent: tableService
  name: ledgerTableName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

// One CloudEvents 1.0 message per terminal state of a file (Base64 JSON), for consumers to read
// with their own Entra identity (Storage Queue Data Message Processor on this queue is enough).
resource eventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: eventsQueueName
}

resource audioLifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2024-01-01' = if (audioRetentionDays > 0) {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-old-audio'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${inputContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: audioRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
