// The Speech account: Entra ID only. Its custom subdomain is what makes Entra tokens valid
// (shared/speech/endpoints.py), and disableLocalAuth turns the resource keys off.

@description('Name of the account; also its custom subdomain (<name>.cognitiveservices.azure.com).')
param name string

@description('Region of the account.')
param location string

@description('Tags of the account.')
param tags object

@allowed([
  'S0'
  'F0'
])
@description('Pricing tier. F0 serves short audio only; batch and fast transcription need S0.')
param sku string

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  //checkov:skip=CKV_AZURE_134:The Flex Consumption app has no virtual network, so its outbound addresses are not fixed; Speech accepts only Entra ID tokens (disableLocalAuth) and the Speech User role
  //checkov:skip=CKV_AZURE_238:The account reaches no other resource: audio comes as user-delegation SAS URLs and results stay in Speech's own storage, so an identity would have nothing to do
  name: name
  location: location
  tags: tags
  kind: 'SpeechServices'
  sku: {
    name: sku
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}
