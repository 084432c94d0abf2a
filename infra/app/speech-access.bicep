// Deployed into the Speech account's resource group, which is not this environment's when
// an existing account is used: grants the data-plane role and reads what the app needs.

@description('Name of the Speech account (created by speech.bicep, or an existing one).')
param speechAccountName string

// main.bicep passes 'ok' when the account has a custom subdomain and otherwise the reason
// and the fix, which the deployment then reports as a value that is not allowed: it stops
// here, before the role assignments, instead of deploying an app that gets 401 on every call.
// Nothing in this file reads the value, hence the linter directive (Bicep linter, "Silencing
// false positives": https://learn.microsoft.com/azure/azure-resource-manager/bicep/linter).
@allowed([
  'ok'
])
@description('Guard: \'ok\' when the account has a custom subdomain (Entra ID needs it); otherwise what to do.')
#disable-next-line no-unused-params
param customSubDomainCheck string

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

var cognitiveServicesSpeechUser = 'f2dc8367-1007-4938-bd23-fe263f013447' // Cognitive Services Speech User

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: speechAccountName
}

// Cognitive Services Speech User: batch, fast and short-audio transcription and reading
// models, without listing keys or managing the account (unlike Cognitive Services User).
resource appSpeechUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(speech.id, appPrincipalId, cognitiveServicesSpeechUser)
  scope: speech
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesSpeechUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Cognitive Services Speech User, for the deploying principal.
resource userSpeechUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(speech.id, userPrincipalId, cognitiveServicesSpeechUser)
  scope: speech
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesSpeechUser)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

@description('The custom-subdomain endpoint, https://<name>.cognitiveservices.azure.com/ (customSubDomainCheck guarantees it is not the regional one).')
output endpoint string = speech.properties.endpoint
output id string = speech.id
