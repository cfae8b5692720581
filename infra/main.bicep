// Klaviyo relay: everything one resource group needs. Deploy with `azd up` (azure.yaml) or
// `az deployment group create -g <rg> -f infra/main.bicep -p infra/main.parameters.json -p klaviyoPrivateApiKey=...`.
targetScope = 'resourceGroup'

@description('Short environment name (azd: AZURE_ENV_NAME); part of every resource name.')
@minLength(1)
@maxLength(20)
param environmentName string

@description('Azure region; defaults to the resource group\'s. Flex Consumption must be available there.')
param location string = resourceGroup().location

@description('Klaviyo private API key (pk_...). Stored in Key Vault; the app reads it through a Key Vault reference.')
@secure()
param klaviyoPrivateApiKey string

@description('Optional ingest signing secret. When set, POST /api/events also requires X-Signature: sha256=<HMAC of the body>.')
@secure()
param ingestSigningSecret string = ''

@description('Ingest__SignatureScheme: how X-Signature is written, sha256 (sha256=<hex HMAC-SHA256 of the body>) or segment-sha1 (Segment webhooks: <hex HMAC-SHA1>).')
@allowed([
  'sha256'
  'segment-sha1'
])
param ingestSignatureScheme string = 'sha256'

@description('Klaviyo__PublicApiKey: accepted for RudderStack parity; cloud mode does not use it.')
param klaviyoPublicApiKey string = ''

@description('Klaviyo__ListId: default list for identify (letters and digits); empty for none.')
param klaviyoListId string = ''

@description('Klaviyo__Consent: comma-separated channels to subscribe: email, sms.')
param klaviyoConsent string = 'email'

@description('Klaviyo__SmsConsent: also subscribe the phone number to SMS marketing.')
param klaviyoSmsConsent bool = false

@description('Klaviyo__OnSubscribeFalse: what subscribe: false does, unsubscribe (RudderStack\'s current behaviour) or addToList.')
@allowed([
  'unsubscribe'
  'addToList'
])
param klaviyoOnSubscribeFalse string = 'unsubscribe'

@description('Klaviyo__GroupMode: what a group does, list (groupId is a Klaviyo list, RudderStack\'s meaning), profile (profile update only) or skip (Segment sources: groupId is an account).')
@allowed([
  'list'
  'profile'
  'skip'
])
param klaviyoGroupMode string = 'list'

@description('Klaviyo__OrderCompleted: what an Order Completed track becomes, orderCompleted (a custom metric of that name, RudderStack\'s behaviour) or placedOrder (Placed Order plus one Ordered Product per item, Klaviyo\'s revenue metrics).')
@allowed([
  'orderCompleted'
  'placedOrder'
])
param klaviyoOrderCompleted string = 'orderCompleted'

@description('Klaviyo__PlacedOrderMetric: the order\'s metric name under placedOrder; under 128 characters, distinct from the item metric.')
@minLength(1)
@maxLength(127)
param klaviyoPlacedOrderMetric string = 'Placed Order'

@description('Klaviyo__OrderedProductMetric: each item\'s metric name under placedOrder; under 128 characters, distinct from the order metric.')
@minLength(1)
@maxLength(127)
param klaviyoOrderedProductMetric string = 'Ordered Product'

@description('Klaviyo__CustomSource: custom_source stored with subscriptions; empty for none.')
@maxLength(255)
param klaviyoCustomSource string = ''

@description('Klaviyo__EnforceEmailAsPrimary: never send external_id; carry userId as profile property _id.')
param klaviyoEnforceEmailAsPrimary bool = false

@description('Klaviyo__SendPageAsTrack: send page events as Klaviyo events (otherwise skipped).')
param klaviyoSendPageAsTrack bool = false

@description('Klaviyo__AdditionalPageInfo: with SendPageAsTrack, attach the page properties.')
param klaviyoAdditionalPageInfo bool = false

@description('Klaviyo__FlattenProperties: flatten nested profile and event properties to dotted keys.')
param klaviyoFlattenProperties bool = false

@description('Klaviyo__BaseUrl: Klaviyo API base URL (change only for a proxy).')
param klaviyoBaseUrl string = 'https://a.klaviyo.com'

@description('Privacy__DeleteEvents: type "delete" events ask Klaviyo to delete the person (otherwise skipped with a warning). The admin route POST /api/privacy/deletions deletes either way.')
param privacyDeleteEvents bool = false

@description('Relay__Ordering: profiles holds a profile\'s later identify, group and delete events while an earlier one waits for its retry (the barrier is a table in the Functions storage account); off holds nothing.')
@allowed([
  'profiles'
  'off'
])
param relayOrdering string = 'profiles'

@description('Relay__MaxAttempts: scheduled delivery attempts per event before it is dead-lettered as RetriesExhausted.')
@minValue(1)
@maxValue(100)
param relayMaxAttempts int = 10

@description('Extra app settings (name: string value) merged over the declared ones, e.g. Relay__* limiter sizes or Ingest__* limits.')
param additionalAppSettings object = {}

@description('Most instances Flex Consumption may scale to. Also Relay__ExpectedInstanceCount: each instance starts from that share of Klaviyo\'s per-account rate limits, then follows Klaviyo\'s RateLimit-* answers.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Always-ready instances kept warm for the Relay function; 0 (default) scales from zero. Each one is billed around the clock (docs/operating-in-azure.md: Cost notes).')
@minValue(0)
@maxValue(10)
param relayAlwaysReadyInstances int = 0

@description('Memory per Flex instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Service Bus tier (Standard or Premium; Basic lacks duplicate detection).')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Events queue name (app setting EventsQueueName).')
param eventsQueueName string = 'klaviyo-events'

@description('Key Vault create mode: default, or recover to take back the soft-deleted vault an azd down without --purge left behind (its name is taken for 7 days). azd: KEY_VAULT_CREATE_MODE.')
@allowed([
  'default'
  'recover'
])
param keyVaultCreateMode string = 'default'

@description('Tags for every resource.')
param tags object = {}

@description('Deploy the Azure Monitor workbook (backlog, delivery and dead letters by reason, Klaviyo requests and 429s by endpoint, import jobs).')
param deployWorkbook bool = true

@description('Alert rule: events dead-lettered (per reason).')
param alertOnDeadLetters bool = true

@description('Alert rule: the queue\'s backlog grew in every 5-minute step for 15 minutes (routes Service Bus metrics to Log Analytics).')
param alertOnBacklogGrowing bool = true

@description('A backlog smaller than this never counts as growing.')
@minValue(1)
param backlogGrowingMinimum int = 1000

@description('Alert rule: Klaviyo answered 401 or 403 (a wrong key or a missing scope).')
param alertOnKlaviyoUnauthorized bool = true

@description('E-mail address the alerts notify; empty: the alerts only show in the portal.')
param alertEmailAddress string = ''

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var allTags = union(tags, { 'azd-env-name': environmentName })
var names = {
  identity: 'id-${environmentName}-${token}'
  storage: 'st${take(token, 13)}'
  deploymentContainer: 'app-package-${take(token, 13)}'
  serviceBus: 'sb-${environmentName}-${token}'
  keyVault: 'kv-${take(token, 13)}'
  workspace: 'log-${environmentName}-${token}'
  appInsights: 'appi-${environmentName}-${token}'
  plan: 'plan-${environmentName}-${token}'
  app: 'func-${environmentName}-${token}'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: allTags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: allTags
    workspaceName: names.workspace
    appInsightsName: names.appInsights
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    tags: allTags
    namespaceName: names.serviceBus
    sku: serviceBusSku
    queueName: eventsQueueName
    // Twice the relay's own attempts: the broker's limit is a backstop for crash loops, not the retry policy.
    maxDeliveryCount: max(20, 2 * relayMaxAttempts)
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: allTags
    accountName: names.storage
    deploymentContainerName: names.deploymentContainer
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: allTags
    vaultName: names.keyVault
    createMode: keyVaultCreateMode
    klaviyoPrivateApiKey: klaviyoPrivateApiKey
    ingestSigningSecret: ingestSigningSecret
    storeIngestSigningSecret: !empty(ingestSigningSecret)
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.properties.principalId
    identityId: identity.id
    // Names from the variable (known before deployment) rather than module outputs, so what-if can predict them.
    serviceBusNamespaceName: names.serviceBus
    storageAccountName: names.storage
    keyVaultName: names.keyVault
    appInsightsName: names.appInsights
  }
  dependsOn: [
    serviceBus
    storage
    keyVault
    monitoring
  ]
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: allTags
    planName: names.plan
    appName: names.app
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.accountName
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    eventsQueueName: serviceBus.outputs.queueName
    klaviyoPrivateApiKeySecretUri: keyVault.outputs.klaviyoPrivateApiKeySecretUri
    ingestSigningSecretUri: keyVault.outputs.ingestSigningSecretUri
    ingestSignatureScheme: ingestSignatureScheme
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    relayAlwaysReadyInstances: relayAlwaysReadyInstances
    klaviyoPublicApiKey: klaviyoPublicApiKey
    klaviyoListId: klaviyoListId
    klaviyoConsent: klaviyoConsent
    klaviyoSmsConsent: klaviyoSmsConsent
    klaviyoOnSubscribeFalse: klaviyoOnSubscribeFalse
    klaviyoGroupMode: klaviyoGroupMode
    klaviyoOrderCompleted: klaviyoOrderCompleted
    klaviyoPlacedOrderMetric: klaviyoPlacedOrderMetric
    klaviyoOrderedProductMetric: klaviyoOrderedProductMetric
    klaviyoCustomSource: klaviyoCustomSource
    klaviyoEnforceEmailAsPrimary: klaviyoEnforceEmailAsPrimary
    klaviyoSendPageAsTrack: klaviyoSendPageAsTrack
    klaviyoAdditionalPageInfo: klaviyoAdditionalPageInfo
    klaviyoFlattenProperties: klaviyoFlattenProperties
    klaviyoBaseUrl: klaviyoBaseUrl
    relayMaxAttempts: relayMaxAttempts
    privacyDeleteEvents: privacyDeleteEvents
    relayOrdering: relayOrdering
    additionalAppSettings: additionalAppSettings
  }
  // The app resolves Key Vault references and opens storage/Service Bus as soon as it exists: grant the roles first.
  dependsOn: [
    roles
  ]
}

module operations 'modules/operations.bicep' = {
  name: 'operations'
  params: {
    location: location
    tags: allTags
    environmentName: environmentName
    appInsightsName: names.appInsights
    workspaceName: names.workspace
    serviceBusNamespaceName: names.serviceBus
    queueName: eventsQueueName
    deployWorkbook: deployWorkbook
    alertOnDeadLetters: alertOnDeadLetters
    alertOnBacklogGrowing: alertOnBacklogGrowing
    backlogGrowingMinimum: backlogGrowingMinimum
    alertOnKlaviyoUnauthorized: alertOnKlaviyoUnauthorized
    alertEmailAddress: alertEmailAddress
  }
  dependsOn: [
    monitoring
    serviceBus
  ]
}

output AZURE_LOCATION string = location
output ingestUrl string = 'https://${functionApp.outputs.defaultHostName}/api/events'
output healthUrl string = 'https://${functionApp.outputs.defaultHostName}/api/health'
output functionAppName string = functionApp.outputs.appName
output flexPlanName string = functionApp.outputs.planName
output serviceBusNamespace string = serviceBus.outputs.namespaceName
output serviceBusFullyQualifiedNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output eventsQueueName string = serviceBus.outputs.queueName
output storageAccountName string = storage.outputs.accountName
output keyVaultName string = keyVault.outputs.vaultName
output appInsightsName string = monitoring.outputs.appInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName
output identityName string = identity.name
output identityClientId string = identity.properties.clientId
output workbookId string = operations.outputs.workbookId
output alertRuleNames array = operations.outputs.alertNames
