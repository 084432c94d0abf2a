// The function app on a Flex Consumption (FC1) plan, Python 3.11. Every connection is
// identity-based through the user-assigned identity: the host's storage (AzureWebJobsStorage),
// the deployment package, the app's storage (AudioStorage), Speech and Application Insights.
// siteConfig.appSettings sets every setting the app reads (tests/infra checks it against
// shared/settings.py and shared/speech/config.py).

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags of the plan and the app.')
param tags object

@description('Resource id of the app\'s user-assigned managed identity.')
param identityId string

@description('Client id of the app\'s user-assigned managed identity.')
param identityClientId string

@description('Name of the storage account (host, deployment package and data).')
param storageAccountName string

@description('Container of the deployment package in that account.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

// Flex Consumption scales an app to 40..1000 instances (the official Flex samples' bounds).
@minValue(40)
@maxValue(1000)
@description('Upper bound of instances, 40 to 1000.')
param maximumInstanceCount int

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance, in MB.')
param instanceMemoryMB int

@description('INPUT_CONTAINER: audio to transcribe.')
param inputContainerName string

@description('REQUESTS_CONTAINER: bulk manifests.')
param requestsContainerName string

@description('OUTPUT_CONTAINER: transcripts.')
param outputContainerName string

@description('LEDGER_TABLE: the job ledger.')
param ledgerTableName string

@description('DEFAULT_LOCALE: locale of jobs that name none.')
param defaultLocale string

@description('POLL_SCHEDULE: NCRONTAB schedule of the poller.')
param pollSchedule string

@description('SWEEP_SCHEDULE: NCRONTAB schedule of the reconciliation sweep.')
param sweepSchedule string

@description('SPEECH_ENDPOINT: the Speech account\'s custom-subdomain endpoint.')
param speechEndpoint string

@description('SPEECH_RESOURCE_ID: the Speech account\'s resource id (Entra short-audio tokens carry it).')
param speechResourceId string

@allowed([
  'batch'
  'fast'
  'auto'
])
@description('ROUTING: which Speech API transcribes an uploaded file (batch, fast or auto).')
param routing string

@description('SPEECH_WEBHOOKS: register a Speech web hook for completed transcriptions.')
param speechWebhooks bool

@description('Versionless URI of the web hook secret in Key Vault (SPEECH_WEBHOOK_SECRET\'s reference); empty without web hooks.')
param speechWebhookSecretUri string

@description('EVENTS_QUEUE: the Storage queue the completion events go to.')
param eventsQueueName string

@description('EVENT_GRID_TOPIC_ENDPOINT: the Event Grid topic the completion events also go to; empty for none.')
param eventGridTopicEndpoint string

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  //checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption needs always-ready instances and limits regions; the app is stateless and the poller resumes every job from the ledger
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' = {
  //checkov:skip=CKV_AZURE_222:The HTTP API and the Event Grid webhook are public endpoints by design; function keys (authLevel FUNCTION) and the blobs_extension key authenticate every call
  //checkov:skip=CKV_AZURE_17:Callers authenticate with function keys; Event Grid webhook delivery cannot present a client certificate
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero by design; always-ready instances would be billed at rest
  //checkov:skip=CKV_AZURE_213:Flex Consumption has no App Service health check; the platform replaces instances, and the health function serves external probes
  //checkov:skip=CKV_AZURE_78:Flex Consumption does not support siteConfig.ftpsState (learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations); the ftp basicPublishingCredentialsPolicies resource below disables FTP publishing
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the system-assigned identity unless this names a
    // user-assigned one; the app has only the user-assigned identity ("Use Key Vault references
    // as app settings", access with a user-assigned identity:
    // https://learn.microsoft.com/azure/app-service/app-service-key-vault-references).
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    // No ftpsState: Flex Consumption does not support it ("Flex Consumption plan
    // deprecations", https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations);
    // FTP stays closed by the ftp publishing-credentials policy below.
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [
        // -- host storage (leases, timers, blob trigger receipts, keys), by identity ------
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // -- the app's storage connection (triggers and code), by identity --------------
        {
          name: 'AudioStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AudioStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AudioStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'AudioStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AudioStorage__clientId'
          value: identityClientId
        }
        // DefaultAzureCredential (Speech) picks the user-assigned identity by this id.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        // -- telemetry, authenticated as the identity -----------------------------------
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // telemetryMode OpenTelemetry (host.json): the worker exports the spans, metrics and logs
        // of the app with the Azure Monitor distro as the identity above, and the host stops
        // forwarding worker logs, so none is written twice (opentelemetry-howto on Learn,
        // https://learn.microsoft.com/azure/azure-functions/opentelemetry-howto).
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        // The automatic instrumentations of the distro stay off (shared/telemetry/setup.py lists
        // the same): the app traces its storage and Speech calls itself, with no SAS in a span,
        // and the host records each invocation already (Duplicate request telemetry, same page).
        {
          name: 'OTEL_PYTHON_DISABLED_INSTRUMENTATIONS'
          value: 'azure_sdk,django,fastapi,flask,httpx,psycopg2,requests,urllib,urllib3'
        }
        // HTTP streams (azurefunctions-extensions-http-fastapi) need init-time indexing.
        {
          name: 'PYTHON_ENABLE_INIT_INDEXING'
          value: '1'
        }
        // -- containers and table ----------------------------------------------------------
        {
          name: 'INPUT_CONTAINER'
          value: inputContainerName
        }
        {
          name: 'REQUESTS_CONTAINER'
          value: requestsContainerName
        }
        {
          name: 'OUTPUT_CONTAINER'
          value: outputContainerName
        }
        {
          name: 'LEDGER_TABLE'
          value: ledgerTableName
        }
        // -- transcription defaults (blob metadata and manifests override them) --------
        {
          name: 'DEFAULT_LOCALE'
          value: defaultLocale
        }
        {
          name: 'DEFAULT_PROFANITY'
          value: 'Masked'
        }
        {
          name: 'DEFAULT_PUNCTUATION'
          value: 'DictatedAndAutomatic'
        }
        {
          name: 'DEFAULT_WORD_TIMESTAMPS'
          value: 'true'
        }
        {
          name: 'DEFAULT_DIARIZATION'
          value: 'false'
        }
        // Empty: each locale's default base model.
        {
          name: 'DEFAULT_MODEL'
          value: ''
        }
        {
          name: 'TIME_TO_LIVE_HOURS'
          value: '48'
        }
        {
          name: 'SAS_VALIDITY_HOURS'
          value: '48'
        }
        {
          name: 'MAX_AUDIO_BYTES'
          value: '1073741824'
        }
        {
          name: 'MANIFEST_MAX_BYTES'
          value: '4194304'
        }
        {
          name: 'MANIFEST_MAX_FILES'
          value: '10000'
        }
        {
          name: 'INTAKE_CONCURRENCY'
          value: '16'
        }
        {
          name: 'INTAKE_MAX_ATTEMPTS'
          value: '6'
        }
        // -- storage client behaviour ------------------------------------------------------
        {
          name: 'STORAGE_CONNECT_TIMEOUT_SECONDS'
          value: '10'
        }
        {
          name: 'STORAGE_READ_TIMEOUT_SECONDS'
          value: '60'
        }
        {
          name: 'STORAGE_RETRY_TOTAL'
          value: '3'
        }
        {
          name: 'STORAGE_RETRY_BACKOFF_SECONDS'
          value: '1'
        }
        // -- poller ----------------------------------------------------------------------
        {
          name: 'POLL_SCHEDULE'
          value: pollSchedule
        }
        {
          name: 'POLL_MIN_INTERVAL_SECONDS'
          value: '60'
        }
        {
          name: 'POLL_MAX_INTERVAL_SECONDS'
          value: '600'
        }
        {
          name: 'POLL_CONCURRENCY'
          value: '8'
        }
        {
          name: 'POLL_BATCH_SIZE'
          value: '200'
        }
        {
          name: 'STUCK_AFTER_HOURS'
          value: '24'
        }
        {
          name: 'INTAKE_STALE_MINUTES'
          value: '10'
        }
        // -- submitter -------------------------------------------------------------------
        {
          name: 'SUBMIT_SCHEDULE'
          value: '*/15 * * * * *'
        }
        {
          name: 'MAX_FILES_PER_JOB'
          value: '1000'
        }
        {
          name: 'BATCH_WINDOW_SECONDS'
          value: '60'
        }
        {
          name: 'SPEECH_REQUESTS_PER_MINUTE'
          value: '540'
        }
        // -- retries, finishing, reconciliation ------------------------------------------
        {
          name: 'RETRY_MAX_SUBMISSIONS'
          value: '4'
        }
        {
          name: 'RETRY_BACKOFF_SECONDS'
          value: '300'
        }
        {
          name: 'FINISH_MAX_ATTEMPTS'
          value: '5'
        }
        {
          name: 'SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'SWEEP_PAGE_SIZE'
          value: '1000'
        }
        {
          name: 'SWEEP_PAGES_PER_TICK'
          value: '1'
        }
        {
          name: 'SWEEP_GRACE_SECONDS'
          value: '300'
        }
        {
          name: 'POISON_QUEUE'
          value: 'webjobs-blobtrigger-poison'
        }
        // -- HTTP ------------------------------------------------------------------------
        {
          name: 'RECOGNIZE_MAX_SECONDS'
          value: '60'
        }
        {
          name: 'RECOGNIZE_MAX_BYTES'
          value: '4194304'
        }
        // Fast transcription (REST 2024-11-15) takes files under 200 MB and 2 hours.
        {
          name: 'TRANSCRIBE_MAX_BYTES'
          value: '199999999'
        }
        // -- routing and the fast lane (shared/settings.py) -------------------------------
        {
          name: 'ROUTING'
          value: routing
        }
        {
          name: 'FAST_MAX_SECONDS'
          value: '120'
        }
        {
          name: 'FAST_CONCURRENCY'
          value: '4'
        }
        // 90 % of the documented 600 fast-transcription requests per minute.
        {
          name: 'FAST_REQUESTS_PER_MINUTE'
          value: '540'
        }
        // -- Speech web hooks ------------------------------------------------------------
        {
          name: 'SPEECH_WEBHOOKS'
          value: speechWebhooks ? 'on' : 'off'
        }
        // A Key Vault reference, resolved by the platform as keyVaultReferenceIdentity
        // (app-service-key-vault-references); empty (unset) without web hooks.
        {
          name: 'SPEECH_WEBHOOK_SECRET'
          value: speechWebhooks ? '@Microsoft.KeyVault(SecretUri=${speechWebhookSecretUri})' : ''
        }
        // Empty: the app derives https://$WEBSITE_HOSTNAME/api/speech/webhooks; WEBSITE_HOSTNAME is
        // the read-only primary host name App Service sets itself ("Environment variables and app
        // settings in Azure App Service", https://learn.microsoft.com/azure/app-service/reference-app-settings).
        {
          name: 'SPEECH_WEBHOOK_URL'
          value: ''
        }
        {
          name: 'WEBHOOK_CHECK_SECONDS'
          value: '300'
        }
        {
          name: 'WEBHOOK_POLL_INTERVAL_SECONDS'
          value: '900'
        }
        // -- operating it: events, actions, cost (shared/settings.py) ----------------------
        {
          name: 'EVENTS_QUEUE'
          value: eventsQueueName
        }
        // Empty (main.bicep's eventGridTopic off): events go to the Storage queue only.
        {
          name: 'EVENT_GRID_TOPIC_ENDPOINT'
          value: eventGridTopicEndpoint
        }
        {
          name: 'EVENTS_SCHEDULE'
          value: '*/10 * * * * *'
        }
        {
          name: 'RETRY_MAX_PER_CALL'
          value: '100'
        }
        {
          name: 'DOWNLOAD_SAS_MINUTES'
          value: '15'
        }
        // Empty: no cost estimate until a price per audio hour is set for the region.
        {
          name: 'PRICE_PER_AUDIO_HOUR_BATCH'
          value: ''
        }
        {
          name: 'PRICE_PER_AUDIO_HOUR_FAST'
          value: ''
        }
        {
          name: 'COST_CURRENCY'
          value: 'USD'
        }
        // -- Speech, keyless -------------------------------------------------------------
        {
          name: 'SPEECH_ENDPOINT'
          value: speechEndpoint
        }
        {
          name: 'SPEECH_RESOURCE_ID'
          value: speechResourceId
        }
        {
          name: 'SPEECH_AUTH_MODE'
          value: 'entra'
        }
        {
          name: 'SPEECH_API_VERSION'
          value: '2024-11-15'
        }
        {
          name: 'SPEECH_TIMEOUT_SECONDS'
          value: '60'
        }
        {
          name: 'SPEECH_MAX_ATTEMPTS'
          value: '4'
        }
      ]
    }
  }
}

// No FTP or SCM basic-auth publishing credentials: azd deploys with an Entra token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
