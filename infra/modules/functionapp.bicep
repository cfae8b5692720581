// Flex Consumption plan + the function app (.NET 10 isolated) running as the user-assigned identity, and every app
// setting the app reads. Klaviyo.Functions.Tests/Infra/AppSettingsCoverageTests.cs parses `var appSettings` below and
// fails when an options property the code binds has no app setting here, and AppSettingsDefaultsTests fails when a value
// written here (or a main.bicep parameter default feeding it) differs from the code's default without a stated reason.
// Klaviyo__Revision is deliberately absent: the request bodies are written for the code's revision (KlaviyoApi).

@description('Azure region for the plan and the app.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app (also its default host name).')
param appName string

@description('Resource ID of the user-assigned identity the app runs as.')
param identityId string

@description('Client ID of the user-assigned identity (for identity-based connections).')
param identityClientId string

@description('Name of the host/deployment storage account.')
param storageAccountName string

@description('Primary blob endpoint of the host/deployment storage account (https://<account>.blob.<suffix>/).')
param storageBlobEndpoint string

@description('Primary table endpoint of the host storage account (the host\'s diagnostic events).')
param storageTableEndpoint string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (not a secret: local auth is disabled on the component).')
param appInsightsConnectionString string

@description('Fully qualified Service Bus namespace (<name>.servicebus.windows.net).')
param serviceBusFullyQualifiedNamespace string

@description('Name of the events queue.')
param eventsQueueName string

@description('Version-less Key Vault secret URI of the Klaviyo private key.')
param klaviyoPrivateApiKeySecretUri string

@description('Version-less Key Vault secret URI of the ingest signing secret; empty when no signing secret is used.')
param ingestSigningSecretUri string

@description('Ingest__SignatureScheme: how X-Signature is written, sha256 (default) or segment-sha1 (Segment webhooks).')
@allowed([
  'sha256'
  'segment-sha1'
])
param ingestSignatureScheme string

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Most instances Flex Consumption may run at once.')
param maximumInstanceCount int

@description('Always-ready instances for the Relay function (0: none, scale from zero).')
@minValue(0)
@maxValue(10)
param relayAlwaysReadyInstances int

@description('Klaviyo__PublicApiKey: accepted for RudderStack parity; cloud mode does not use it.')
param klaviyoPublicApiKey string

@description('Klaviyo__ListId: default list for identify (letters and digits), empty for none.')
param klaviyoListId string

@description('Klaviyo__Consent: comma-separated channels to subscribe (email, sms).')
param klaviyoConsent string

@description('Klaviyo__SmsConsent: also subscribe the phone number to SMS marketing.')
param klaviyoSmsConsent bool

@description('Klaviyo__OnSubscribeFalse: what subscribe: false does, unsubscribe (default) or addToList.')
@allowed([
  'unsubscribe'
  'addToList'
])
param klaviyoOnSubscribeFalse string

@description('Klaviyo__GroupMode: what a group does, list (default), profile (profile update only) or skip (Segment sources).')
@allowed([
  'list'
  'profile'
  'skip'
])
param klaviyoGroupMode string

@description('Klaviyo__OrderCompleted: orderCompleted (default, a custom metric) or placedOrder (Placed Order plus Ordered Product per item).')
@allowed([
  'orderCompleted'
  'placedOrder'
])
param klaviyoOrderCompleted string

@description('Klaviyo__PlacedOrderMetric: the order\'s metric name under placedOrder.')
@minLength(1)
@maxLength(127)
param klaviyoPlacedOrderMetric string

@description('Klaviyo__OrderedProductMetric: each item\'s metric name under placedOrder.')
@minLength(1)
@maxLength(127)
param klaviyoOrderedProductMetric string

@description('Klaviyo__CustomSource: custom_source stored with subscriptions; empty for none.')
@maxLength(255)
param klaviyoCustomSource string

@description('Klaviyo__EnforceEmailAsPrimary: never send external_id; carry userId as profile property _id.')
param klaviyoEnforceEmailAsPrimary bool

@description('Klaviyo__SendPageAsTrack: send page events as Klaviyo events.')
param klaviyoSendPageAsTrack bool

@description('Klaviyo__AdditionalPageInfo: with SendPageAsTrack, attach the page properties.')
param klaviyoAdditionalPageInfo bool

@description('Klaviyo__FlattenProperties: flatten nested properties to dotted keys.')
param klaviyoFlattenProperties bool

@description('Klaviyo__BaseUrl: Klaviyo API base URL.')
param klaviyoBaseUrl string

@description('Relay__MaxAttempts: scheduled delivery attempts per event before it is dead-lettered as RetriesExhausted.')
param relayMaxAttempts int

@description('Privacy__DeleteEvents: type "delete" events ask Klaviyo to delete the person (otherwise skipped).')
param privacyDeleteEvents bool

@description('Relay__Ordering: profiles (per-profile ordering, spec 10) or off.')
@allowed([
  'profiles'
  'off'
])
param relayOrdering string

@description('Extra app settings merged over the ones declared here (for Relay__*/Ingest__* limits you want to tune).')
param additionalAppSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// The one place the Bicep writes a Key Vault reference (AppSettingsCoverageTests ties its prefix to the code's
// KeyVaultReference.Prefix, which the app uses to tell an unresolved reference).
@description('App Service Key Vault reference to a version-less secret URI, resolved with keyVaultReferenceIdentity.')
func keyVaultReference(secretUri string) string => '@Microsoft.KeyVault(SecretUri=${secretUri})'

// App settings are strings; the .NET configuration binder reads "true"/"false" and integers from them.
var appSettings = {
  // Functions host storage, identity-based (no keys). Flex deprecates FUNCTIONS_WORKER_RUNTIME and friends:
  // the runtime is declared in functionAppConfig.runtime instead.
  // accountName as well as the service URIs: with blobServiceUri alone Flex can hit a start-up race (host unhealthy,
  // 401 creating the blob client; azure-functions-host #11787). The table endpoint holds the host's diagnostic events.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId

  // Application Insights with Entra auth (the component refuses instrumentation-key-only telemetry).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The worker exports with OpenTelemetry (host.json telemetryMode) using this identity (ManagedIdentityCredential).
  AZURE_CLIENT_ID: identityClientId
  // An extra exporter beside Azure Monitor (none, console, otlp); see docs/operating-in-azure.md "Telemetry".
  Telemetry__Exporter: 'none'

  // Service Bus: the connection named "ServiceBus" (trigger, sender, replay), managed identity.
  ServiceBus__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  ServiceBus__credential: 'managedidentity'
  ServiceBus__clientId: identityClientId
  EventsQueueName: eventsQueueName

  // Klaviyo (spec section 3). The key comes from Key Vault through the app's identity (keyVaultReferenceIdentity).
  Klaviyo__PrivateApiKey: keyVaultReference(klaviyoPrivateApiKeySecretUri)
  Klaviyo__PublicApiKey: klaviyoPublicApiKey
  Klaviyo__ListId: klaviyoListId
  Klaviyo__Consent: klaviyoConsent
  Klaviyo__SmsConsent: toLower(string(klaviyoSmsConsent))
  Klaviyo__OnSubscribeFalse: klaviyoOnSubscribeFalse
  Klaviyo__GroupMode: klaviyoGroupMode
  Klaviyo__OrderCompleted: klaviyoOrderCompleted
  Klaviyo__PlacedOrderMetric: klaviyoPlacedOrderMetric
  Klaviyo__OrderedProductMetric: klaviyoOrderedProductMetric
  Klaviyo__CustomSource: klaviyoCustomSource
  Klaviyo__EnforceEmailAsPrimary: toLower(string(klaviyoEnforceEmailAsPrimary))
  Klaviyo__SendPageAsTrack: toLower(string(klaviyoSendPageAsTrack))
  Klaviyo__AdditionalPageInfo: toLower(string(klaviyoAdditionalPageInfo))
  Klaviyo__FlattenProperties: toLower(string(klaviyoFlattenProperties))
  Klaviyo__BaseUrl: klaviyoBaseUrl

  // Relay (RelayOptions). Add new Relay__* settings here; the coverage test lists any that are missing.
  // Literal values are the code's defaults (AppSettingsDefaultsTests proves it), written out so operators see them in
  // the portal; override them through the additionalAppSettings parameter.
  Relay__MaxAttempts: string(relayMaxAttempts)
  // Each instance takes 1/N of Klaviyo's per-account rate limits; N = the most instances Flex may run.
  Relay__ExpectedInstanceCount: string(maximumInstanceCount)
  Relay__MaxInCallRetries: '2'
  Relay__InCallRetryBudget: '00:00:05'
  Relay__InCallRetryDelay: '00:00:00.5'
  Relay__AttemptTimeout: '00:00:10'
  Relay__BulkThreshold: '10'
  Relay__GatherWindow: '00:00:01'
  Relay__MaxItemsPerOrder: '500'
  // Per-profile ordering (spec 10): the barrier is the RelayOrdering table of the storage account above.
  Relay__Ordering: relayOrdering
  Relay__OrderingMaxHeldPerKey: '200'

  // Ingest (IngestOptions). Add new Ingest__* settings here.
  Ingest__SigningSecret: empty(ingestSigningSecretUri) ? '' : keyVaultReference(ingestSigningSecretUri)
  Ingest__SignatureScheme: ingestSignatureScheme
  Ingest__MaxRequestBytes: '4194304'
  Ingest__MaxEventBytes: '32768'
  Ingest__MaxEventsPerRequest: '10000'
  Ingest__MinBodyBytesPerSecond: '16384'
  Ingest__SendTimeout: '00:00:30'
  Ingest__RetryAfter: '00:00:10'
  Ingest__MaxInFlightBodyBytes: '134217728'

  // Privacy (PrivacyOptions, spec 5.7). POST /api/privacy/deletions deletes whatever this says.
  Privacy__DeleteEvents: toLower(string(privacyDeleteEvents))
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  // azd finds the app to deploy service "relay" (azure.yaml) by this tag.
  tags: union(tags, { 'azd-service-name': 'relay' })
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
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Billed around the clock when set; keeps the Relay warm so the first message after idle is not delayed by a
        // cold start (up to about 2 minutes on Flex, azure-functions-host #10706).
        alwaysReady: relayAlwaysReadyInstances > 0 ? [
          {
            name: 'function:Relay'
            instanceCount: relayAlwaysReadyInstances
          }
        ] : []
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: app
  name: 'appsettings'
  properties: union(appSettings, additionalAppSettings)
}

output appName string = app.name
output defaultHostName string = app.properties.defaultHostName
output planName string = plan.name
