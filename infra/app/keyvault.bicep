// The Key Vault of the Speech web hook secret (main.bicep deploys it only with speechWebhooks).
// The secret is the HMAC key Speech signs its web hook deliveries with; the app reads it as the
// app setting SPEECH_WEBHOOK_SECRET, a Key Vault reference the platform resolves with the app's
// user-assigned identity ("Use Key Vault references as app settings",
// https://learn.microsoft.com/azure/app-service/app-service-key-vault-references). RBAC only:
// no access policies, and the identity can read secrets and nothing else.

@minLength(3)
@maxLength(24)
@description('Name of the vault (3-24 letters, digits and hyphens, globally unique).')
param name string

@description('Region of the vault.')
param location string

@description('Tags of the vault.')
param tags object

@description('Principal id of the app\'s managed identity (Key Vault Secrets User on the vault).')
param appPrincipalId string

@secure()
@minLength(16)
@description('SPEECH_WEBHOOK_SECRET: the HMAC key of the Speech web hook deliveries (azd generates it).')
param speechWebhookSecret string

@description('Resource id of the Log Analytics workspace that receives the vault\'s audit log.')
param logAnalyticsWorkspaceId string

// The name the app setting's reference points to.
var secretName = 'speech-webhook-secret'

// Key Vault Secrets User: read secret contents, the role Key Vault references need under the
// RBAC permission model (app-service-key-vault-references, "Grant your app access to a key vault").
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  //checkov:skip=CKV_AZURE_109:The Flex Consumption app has no virtual network integration, and App Service resolves Key Vault references from the app's own outbound network, whose addresses are not fixed: a default-deny firewall would leave SPEECH_WEBHOOK_SECRET unresolved (learn.microsoft.com/azure/app-service/app-service-key-vault-references, "Access network-restricted vaults"); every data-plane call needs an Entra token and a Key Vault RBAC role
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: without virtual network integration the app reaches the vault only over its public endpoint; RBAC authorization grants one identity Key Vault Secrets User and nobody else any data-plane role
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC, not access policies ("Azure RBAC for Key Vault data plane operations",
    // https://learn.microsoft.com/azure/key-vault/general/rbac-guide): the role assignment below
    // is the only data-plane grant.
    enableRbacAuthorization: true
    accessPolicies: []
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    // A deleted vault or secret stays recoverable and cannot be purged early ("Azure Key Vault
    // soft-delete overview", https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview).
    enableSoftDelete: true
    enablePurgeProtection: true
    // The cost: after `azd down` the name stays taken this long (azd does not purge a
    // purge-protected vault), so `azd up` of the same environment fails until then or until
    // `az keyvault recover --name <vault>`, once the resource group exists again. 7 days, the
    // minimum, keeps that window short; the secret itself is regenerable.
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'None'
      defaultAction: 'Allow'
    }
  }
}

// Written through Resource Manager, so the deploying principal needs no data-plane role. No
// expiry (exp): the HMAC key has no lifetime of its own; a new value is a new version, which
// the versionless reference below picks up.
resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  //checkov:skip=CKV_AZURE_41:The web hook HMAC key has no natural lifetime: it is rotated by provisioning a new value (a new version, which the versionless Key Vault reference resolves); an expiry would declare a key still in use unusable on an arbitrary date
  parent: vault
  name: secretName
  properties: {
    value: speechWebhookSecret
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Who read or changed the secret, in the environment's Log Analytics workspace ("Azure Key Vault
// logging", https://learn.microsoft.com/azure/key-vault/general/logging).
resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
// Versionless, with the trailing slash of the documented form: App Service then resolves the
// latest version ("Rotation", app-service-key-vault-references).
output speechWebhookSecretUri string = '${vault.properties.vaultUri}secrets/${secretName}/'
