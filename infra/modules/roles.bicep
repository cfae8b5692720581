// Data-plane roles for the app's user-assigned identity, each scoped to the one resource it needs. Nobody else gets
// a role here: the deployment writes the Key Vault secrets through the control plane.

@description('Principal (object) ID of the app\'s user-assigned identity.')
param principalId string

@description('Resource ID of the app\'s user-assigned identity; names the assignments, so they are known before deployment (what-if).')
param identityId string

@description('Name of the Service Bus namespace.')
param serviceBusNamespaceName string

@description('Name of the storage account used for host storage and deployment.')
param storageAccountName string

@description('Name of the Key Vault that holds the app\'s secrets.')
param keyVaultName string

@description('Name of the Application Insights component.')
param appInsightsName string

// Built-in role definition IDs (the same in every tenant).
var roles = {
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender: ingest enqueues, relay schedules retries and import job trackers, replay moves dead letters back
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver: the trigger, dead-letter replay, taking deferred messages back for an import job's tracker
  // Azure Service Bus Data Owner: the scale controller reads queue runtime properties (message count) for
  // target-based scaling; without it the extension falls back to less accurate peek-based estimation.
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner: host leases/keys and the deployment package
  // Storage Table Data Contributor: the host's diagnostic-events table (without it the host disables that store with warnings),
  // and the relay's per-profile ordering barrier (table RelayOrdering, Relay__Ordering=profiles)
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User: resolve Key Vault reference app settings
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher: Entra-authenticated telemetry
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource serviceBusRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in [roles.serviceBusDataSender, roles.serviceBusDataReceiver, roles.serviceBusDataOwner]: {
    name: guid(serviceBus.id, identityId, roleId)
    scope: serviceBus
    properties: {
      principalId: principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in [roles.storageBlobDataOwner, roles.storageTableDataContributor]: {
    name: guid(storage.id, identityId, roleId)
    scope: storage
    properties: {
      principalId: principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource monitoringRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}
