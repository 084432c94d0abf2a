// Speech transcription on Azure Functions (Flex Consumption), keyless end to end.
// `azd up` provisions this file, deploys the app, then runs infra/hooks/postdeploy.* to
// subscribe the two Event Grid-sourced blob triggers (see infra/app/eventgrid-subscriptions.bicep).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. It seeds the unique token in every resource name and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of every resource. Flex Consumption must be available there (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user or service principal. It gets the same data roles as the app, to debug locally against the cloud resources. Empty: no roles for people.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Principal type of principalId.')
param principalType string = 'User'

@allowed([
  'S0'
  'F0'
])
@description('Speech pricing tier. F0 is free but serves only short audio (the recognize function): batch and fast transcription need S0.')
param speechSku string = 'S0'

// Fast transcription is served only in some regions: "Some features, such as fast
// transcription [...], require specific regions" (Speech service supported regions,
// https://learn.microsoft.com/azure/ai-services/speech-service/regions). The app's region is
// chosen for Flex Consumption, so the Speech account may need another one.
@minLength(1)
@description('Region of a new Speech account; default: location. Fast transcription (POST /api/transcribe) is available only in some Speech regions (https://learn.microsoft.com/azure/ai-services/speech-service/regions); batch transcription and short audio in all. Not used with existingSpeechAccountName.')
param speechLocation string = location

@description('Name of an existing Speech account to use instead of creating one. It must have a custom subdomain (Entra ID auth needs it; the deployment stops otherwise). Empty: create a new account.')
param existingSpeechAccountName string = ''

@description('Resource group of the existing Speech account. Empty: this environment\'s resource group.')
param existingSpeechResourceGroupName string = ''

@minLength(2)
@description('Locale of jobs whose blob metadata or manifest names none (BCP-47, e.g. en-US).')
param defaultLocale string = 'en-US'

@minLength(1)
@description('NCRONTAB schedule (six fields, seconds first) of the poller that advances transcription jobs.')
param pollSchedule string = '0 * * * * *'

@minLength(1)
@description('NCRONTAB schedule of the sweep that reconciles the input container with the ledger (lost events, poison blobs, retries, deleted blobs).')
param sweepSchedule string = '30 */5 * * * *'

@minValue(0)
@description('Delete input audio this many days after its last modification (a lifecycle rule). 0: keep audio forever.')
param audioRetentionDays int = 0

// Flex Consumption takes 40 to 1000 (the official Flex samples declare the same bounds).
@minValue(40)
@maxValue(1000)
@description('Upper bound of Flex Consumption instances (a cost ceiling), 40 to 1000.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@allowed([
  'batch'
  'fast'
  'auto'
])
@description('ROUTING: which Speech API transcribes an uploaded file by default (blob metadata "mode" overrides it). batch: batch transcription jobs; fast: fast transcription, one synchronous request per file (a Speech region that offers it: https://learn.microsoft.com/azure/ai-services/speech-service/regions); auto: fast for files provably at most FAST_MAX_SECONDS long, else batch.')
param routing string = 'batch'

@description('SPEECH_WEBHOOKS: register a Speech web hook for completed transcriptions (polling becomes the backstop). true also creates a Key Vault for its secret.')
param speechWebhooks bool = false

// The HMAC key Speech signs web hook deliveries with. azd generates it on the first provision
// and keeps it in the environment's configuration for the next ones ("Work with Azure Developer
// CLI metadata for Bicep input parameters", type generate:
// https://learn.microsoft.com/azure/developer/azure-developer-cli/metadata); it is not bound in
// main.parameters.json, so it never lands in the environment's .env. 32 letters and digits:
// the app needs at least 16 characters, and no symbol needs quoting anywhere.
@secure()
@minLength(16)
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 32
      noSpecial: true
    }
  }
})
@description('SPEECH_WEBHOOK_SECRET: HMAC key of the Speech web hook deliveries, stored in Key Vault (only with speechWebhooks). azd generates it.')
param speechWebhookSecret string

@description('Also publish the completion events (CloudEvents 1.0) to a new Event Grid custom topic, Entra-only, with the app as its one sender (EVENT_GRID_TOPIC_ENDPOINT). The Storage queue transcription-events gets them either way.')
param eventGridTopic bool = false

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// Names the app reads from app settings; they equal AppSettings' defaults (shared/settings.py).
var inputContainerName = 'audio-input'
var requestsContainerName = 'transcription-requests'
var outputContainerName = 'transcripts'
var ledgerTableName = 'transcriptionledger'
var eventsQueueName = 'transcription-events'

var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
// The Flex Consumption deployment package container (azd uploads the zip there).
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var useExistingSpeech = !empty(existingSpeechAccountName)
var newSpeechAccountName = '${abbrs.cognitiveServicesSpeech}${resourceToken}'
var speechAccountName = useExistingSpeech ? existingSpeechAccountName : newSpeechAccountName
var speechResourceGroupName = useExistingSpeech && !empty(existingSpeechResourceGroupName) ? existingSpeechResourceGroupName : rg.name

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    inputContainerName: inputContainerName
    requestsContainerName: requestsContainerName
    outputContainerName: outputContainerName
    deploymentContainerName: deploymentContainerName
    ledgerTableName: ledgerTableName
    eventsQueueName: eventsQueueName
    audioRetentionDays: audioRetentionDays
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module speech 'app/speech.bicep' = if (!useExistingSpeech) {
  name: 'speech'
  scope: rg
  params: {
    name: newSpeechAccountName
    location: speechLocation
    tags: tags
    sku: speechSku
  }
}

// The Speech account the app will call, new or existing, read back for its custom subdomain.
resource speechAccount 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: speechAccountName
  scope: resourceGroup(speechResourceGroupName)
}

// Entra ID needs the account's custom subdomain: without one, properties.endpoint is the
// regional host, where Speech refuses Entra tokens and every call of the app fails with 401
// ("Microsoft Entra authentication with the Speech SDK": create a custom domain name,
// https://learn.microsoft.com/azure/ai-services/speech-service/how-to-configure-azure-ad-auth).
// Bicep's fail() would say so, but checkov's Bicep parser (pycep-parser 0.5.1, pinned by
// checkov) cannot read it; instead speech-access.bicep allows only 'ok' for this value,
// so the deployment stops there, before any role or the app, with this text in the error.
// The command is the one of https://learn.microsoft.com/azure/ai-services/speech-service/speech-services-private-link.
var speechAccountCheck = empty(speechAccount.properties.?customSubDomainName) ? 'Speech account ${speechAccountName} has no custom subdomain, so the app (Entra ID) would get 401 on its regional endpoint. Give it one, which cannot be undone: az cognitiveservices account update --name ${speechAccountName} --resource-group ${speechResourceGroupName} --custom-domain <name>; then provision again.' : 'ok'

// Role assignments on the Speech account (new or existing, in its own resource group) and
// the endpoint and resource id the app needs.
module speechAccess 'app/speech-access.bicep' = {
  name: 'speech-access'
  scope: resourceGroup(speechResourceGroupName)
  params: {
    speechAccountName: speechAccountName
    customSubDomainCheck: speechAccountCheck
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
  dependsOn: [
    speech
  ]
}

// The web hook secret's vault, only with web hooks on. The app reads the secret through a Key
// Vault reference (api.bicep), as its identity, which gets Key Vault Secrets User there.
module keyVault 'app/keyvault.bicep' = if (speechWebhooks) {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    speechWebhookSecret: speechWebhookSecret
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

// The completion events' Event Grid topic, only with eventGridTopic (the queue always gets them).
module eventGridTopicModule 'app/eventgrid-topic.bicep' = if (eventGridTopic) {
  name: 'eventgrid-topic'
  scope: rg
  params: {
    name: '${abbrs.eventGridTopics}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    inputContainerName: inputContainerName
    requestsContainerName: requestsContainerName
    outputContainerName: outputContainerName
    ledgerTableName: ledgerTableName
    defaultLocale: defaultLocale
    pollSchedule: pollSchedule
    sweepSchedule: sweepSchedule
    speechEndpoint: speechAccess.outputs.endpoint
    speechResourceId: speechAccess.outputs.id
    routing: routing
    speechWebhooks: speechWebhooks
    // The output of a conditional module is read only under the same condition, with the
    // null-forgiving operator ("Conditional deployments in Bicep with the if expression",
    // https://learn.microsoft.com/azure/azure-resource-manager/bicep/conditional-resource-deployment);
    // reading it also orders the app after the vault's role assignment.
    speechWebhookSecretUri: speechWebhooks ? keyVault!.outputs.speechWebhookSecretUri : ''
    eventsQueueName: eventsQueueName
    eventGridTopicEndpoint: eventGridTopic ? eventGridTopicModule!.outputs.endpoint : ''
  }
  // The host reads storage and Application Insights with the identity from its first start.
  dependsOn: [
    rbac
  ]
}

module eventGrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    name: '${abbrs.eventGridSystemTopics}${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

// azd environment values. The hooks read the resource names; a developer who exports these
// (`azd env get-values`) can run the app locally against the cloud resources.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output EVENT_GRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output INPUT_CONTAINER string = inputContainerName
output REQUESTS_CONTAINER string = requestsContainerName
output OUTPUT_CONTAINER string = outputContainerName
output LEDGER_TABLE string = ledgerTableName
output AudioStorage__blobServiceUri string = storage.outputs.blobEndpoint
output AudioStorage__queueServiceUri string = storage.outputs.queueEndpoint
output AudioStorage__tableServiceUri string = storage.outputs.tableEndpoint
output SPEECH_ENDPOINT string = speechAccess.outputs.endpoint
output SPEECH_RESOURCE_ID string = speechAccess.outputs.id
// Empty without web hooks (no vault).
output AZURE_KEY_VAULT_NAME string = speechWebhooks ? keyVault!.outputs.name : ''
output EVENTS_QUEUE string = eventsQueueName
// Empty without the topic.
output EVENT_GRID_TOPIC_ENDPOINT string = eventGridTopic ? eventGridTopicModule!.outputs.endpoint : ''
