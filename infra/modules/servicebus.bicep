// Service Bus namespace (identity-only: SAS keys disabled) and the events queue the ingest writes and the relay reads.

@description('Azure region for the namespace.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Service Bus namespace.')
param namespaceName string

@description('Service Bus tier. Basic has no duplicate detection, which the ingest relies on, so it is not offered.')
@allowed([
  'Standard'
  'Premium'
])
param sku string = 'Standard'

@description('Name of the events queue (app setting EventsQueueName).')
param queueName string = 'klaviyo-events'

@description('How long an event may wait in the queue before it is dead-lettered (ISO 8601). Each scheduled retry is a new message with its own time to live.')
param messageTimeToLive string = 'P14D'

@description('Broker-side delivery limit. The relay completes the original on every scheduled retry, so deliveries only pile up on crashes and lost locks; it must stay above Relay__MaxAttempts so the relay, not the broker, decides when retries are exhausted.')
@minValue(11)
@maxValue(2000)
param maxDeliveryCount int = 20

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    // One relay invocation makes 1-4 Klaviyo calls (profile import, subscription, list membership, event). Each call is
    // at most 3 tries of Relay__AttemptTimeout (10 s) with at most 5 s of waiting between them, so ~35 s worst case per
    // call and ~140 s for the rare identify that needs all four; the typical invocation takes well under a second.
    // Two minutes covers almost every case without relying on renewal (host.json renews up to 5 min for the rest) and
    // still brings a message held by a crashed instance back within two minutes.
    lockDuration: 'PT2M'
    maxDeliveryCount: maxDeliveryCount
    // The ingest sets MessageId = the event's messageId, so a retried webhook request does not enqueue twice.
    // Immutable after creation: changing it means a new queue.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    requiresSession: false
    enablePartitioning: false
  }
}

output namespaceName string = namespace.name
// serviceBusEndpoint is https://<name>.servicebus.<cloud suffix>:443/; the host name is the fully qualified namespace.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
output queueName string = queue.name
