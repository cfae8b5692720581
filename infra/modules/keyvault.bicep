// Key Vault (RBAC mode) holding the secrets the app reads through Key Vault references.

@description('Azure region for the vault.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Key Vault (3-24 characters).')
@minLength(3)
@maxLength(24)
param vaultName string

@description('default: create the vault (or update it). recover: take back a soft-deleted vault of this name (after an azd down without --purge, which keeps the name for the 7 days of soft-delete retention).')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Klaviyo private API key (pk_...). Stored as the secret klaviyo-private-api-key.')
@secure()
param klaviyoPrivateApiKey string

@description('Optional ingest signing secret (HMAC-SHA256 of the body in X-Signature). Empty: no secret is stored and signatures are not required.')
@secure()
param ingestSigningSecret string = ''

@description('Whether ingestSigningSecret is set (passed separately so that no output is derived from the secret).')
param storeIngestSigningSecret bool = false

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    createMode: createMode
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource klaviyoKey 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: 'klaviyo-private-api-key'
  properties: {
    value: klaviyoPrivateApiKey
    contentType: 'Klaviyo private API key'
  }
}

resource signingSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (storeIngestSigningSecret) {
  parent: vault
  name: 'ingest-signing-secret'
  properties: {
    value: ingestSigningSecret
    contentType: 'Ingest X-Signature HMAC secret'
  }
}

output vaultName string = vault.name
// Version-less URIs: a Key Vault reference then follows the latest version, which is how key rotation works.
output klaviyoPrivateApiKeySecretUri string = '${vault.properties.vaultUri}secrets/${klaviyoKey.name}/'
output ingestSigningSecretUri string = !storeIngestSigningSecret ? '' : '${vault.properties.vaultUri}secrets/ingest-signing-secret/'
