// The operator's view in Azure (spec section 11): a workbook over the relay's OpenTelemetry metrics (meter
// Klaviyo.Relay, in Application Insights' customMetrics) and the Service Bus namespace metrics, and alert rules for
// dead letters appearing, a backlog growing for 15 minutes and Klaviyo answering 401/403. Each part has its switch.

@description('Azure region for the workbook and the alert rules.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Environment name, shown in the workbook\'s and the alerts\' names.')
param environmentName string

@description('Name of the Application Insights component the relay exports its metrics to.')
param appInsightsName string

@description('Name of the Log Analytics workspace behind Application Insights (Service Bus metrics are routed there for the backlog alert).')
param workspaceName string

@description('Name of the Service Bus namespace holding the events queue.')
param serviceBusNamespaceName string

@description('Name of the events queue.')
param queueName string

@description('Deploy the workbook.')
param deployWorkbook bool = true

@description('Alert when events are dead-lettered (any reason), per reason.')
param alertOnDeadLetters bool = true

@description('Alert when the queue\'s backlog of active messages has grown in every 5-minute step for 15 minutes.')
param alertOnBacklogGrowing bool = true

@description('Only a backlog at least this large counts as growing (smaller ones are normal bursts).')
@minValue(1)
param backlogGrowingMinimum int = 1000

@description('Alert when Klaviyo answers 401 or 403 (a wrong key or a missing scope), per endpoint.')
param alertOnKlaviyoUnauthorized bool = true

@description('E-mail address the alerts notify; empty: the alerts only show in the portal.')
param alertEmailAddress string = ''

var anyAlert = alertOnDeadLetters || alertOnBacklogGrowing || alertOnKlaviyoUnauthorized
var notify = anyAlert && !empty(alertEmailAddress)
var actions = notify ? { actionGroups: [ actionGroup.id ] } : { actionGroups: [] }

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' existing = {
  name: workspaceName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

// The relay's metrics: the names are Klaviyo.Functions/Diagnostics/RelayMetrics.cs's and Ingest/IngestMetrics.cs's.
var deliveryQuery = '''
customMetrics
| where name in ('klaviyo.relay.ingest.accepted', 'klaviyo.relay.delivered', 'klaviyo.relay.skipped', 'klaviyo.relay.dead_lettered')
| extend Series = iff(name == 'klaviyo.relay.dead_lettered', strcat('dead-lettered: ', tostring(customDimensions.reason)), replace_string(replace_string(name, 'klaviyo.relay.', ''), 'ingest.', ''))
| summarize Events = sum(valueSum) by Series, bin(timestamp, 5m)
| render timechart
'''

var deadLetterQuery = '''
customMetrics
| where name == 'klaviyo.relay.dead_lettered'
| summarize DeadLettered = sum(valueSum), Last = max(timestamp) by Reason = tostring(customDimensions.reason)
| order by DeadLettered desc
'''

var klaviyoQuery = '''
customMetrics
| where name == 'klaviyo.relay.klaviyo.requests'
| extend Endpoint = tostring(customDimensions.endpoint), Status = tostring(customDimensions['http.response.status_code'])
| summarize Requests = sum(valueSum), Answered429 = sumif(valueSum, Status == '429'), Answered401or403 = sumif(valueSum, Status in ('401', '403')), NoAnswer = sumif(valueSum, Status == '') by Endpoint
| extend Share429Percent = round(100.0 * Answered429 / Requests, 1)
| order by Requests desc
'''

var throttledQuery = '''
customMetrics
| where name == 'klaviyo.relay.klaviyo.requests' and tostring(customDimensions['http.response.status_code']) == '429'
| summarize Answered429 = sum(valueSum) by Endpoint = tostring(customDimensions.endpoint), bin(timestamp, 5m)
| render timechart
'''

var heldBackQuery = '''
customMetrics
| where name == 'klaviyo.relay.klaviyo.held_back'
| summarize HeldBack = sum(valueSum) by Endpoint = tostring(customDimensions.endpoint), bin(timestamp, 5m)
| render timechart
'''

var importJobQuery = '''
customMetrics
| where name == 'klaviyo.relay.import_job.wait'
| summarize Jobs = sum(valueCount), AverageWaitSeconds = round(sum(valueSum) / sum(valueCount), 1), LongestWaitSeconds = round(max(valueMax), 1) by State = tostring(customDimensions.state)
| order by Jobs desc
'''

var deadLetterAlertQuery = '''
customMetrics
| where name == 'klaviyo.relay.dead_lettered'
| summarize DeadLettered = sum(valueSum) by Reason = tostring(customDimensions.reason)
'''

var unauthorizedAlertQuery = '''
customMetrics
| where name == 'klaviyo.relay.klaviyo.requests' and tostring(customDimensions['http.response.status_code']) in ('401', '403')
| summarize Refused = sum(valueSum) by Endpoint = tostring(customDimensions.endpoint)
'''

// Grown in every 5-minute step of the window (at least three steps: 15 minutes) and at least the minimum now.
var backlogAlertQuery = '''
AzureMetrics
| where ResourceId =~ '{namespaceId}' and MetricName == 'ActiveMessages'
| summarize Backlog = max(Maximum) by bin(TimeGenerated, 5m)
| order by TimeGenerated asc
| serialize Step = Backlog - prev(Backlog)
| summarize Steps = countif(isnotnull(Step)), Rising = countif(Step > 0), Backlog = max(Backlog)
| where Steps >= 3 and Rising == Steps and Backlog >= {minimum}
'''

func metricChart(name string, title string, metric string, aggregation int, resourceId string) object => {
  type: 10
  name: name
  content: {
    chartId: name
    version: 'MetricsItem/2.0'
    size: 0
    chartType: 2
    resourceType: 'microsoft.servicebus/namespaces'
    metricScope: 0
    resourceIds: [ resourceId ]
    timeContextFromParameter: 'TimeRange'
    timeContext: { durationMs: 86400000 }
    metrics: [
      {
        namespace: 'microsoft.servicebus/namespaces'
        metric: 'microsoft.servicebus/namespaces--${metric}'
        aggregation: aggregation
        splitBy: 'EntityName'
      }
    ]
    title: title
    gridSettings: { rowLimit: 10000 }
  }
  customWidth: '50'
}

func logItem(name string, title string, query string, visualization string, resourceId string) object => {
  type: 3
  name: name
  content: {
    version: 'KqlItem/1.0'
    query: query
    size: 0
    title: title
    timeContextFromParameter: 'TimeRange'
    queryType: 0
    resourceType: 'microsoft.insights/components'
    crossComponentResources: [ resourceId ]
    visualization: visualization
  }
  customWidth: '50'
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Klaviyo relay (${environmentName})\nBacklog from the Service Bus namespace; delivery, dead letters, Klaviyo requests and import jobs from the relay\'s OpenTelemetry metrics (meter `Klaviyo.Relay`). Replay dead letters with `POST /api/dead-letters/replay?reason=` (admin key).'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          {
            id: 'f0c1a3f2-5d1e-4f4b-9c59-2a2a3f0b7a11'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: { durationMs: 86400000 }
            typeSettings: {
              selectableValues: [
                { durationMs: 3600000 }
                { durationMs: 14400000 }
                { durationMs: 86400000 }
                { durationMs: 604800000 }
              ]
            }
          }
        ]
        style: 'pills'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    metricChart('backlog-active', 'Backlog: active messages (${queueName})', 'ActiveMessages', 4, namespace.id)
    metricChart('backlog-scheduled', 'Backlog: scheduled retries', 'ScheduledMessages', 4, namespace.id)
    metricChart('backlog-dead', 'Dead-lettered messages in the queue', 'DeadletteredMessages', 4, namespace.id)
    metricChart('backlog-all', 'All messages (active, scheduled, deferred awaiting an import job, dead-lettered)', 'Messages', 4, namespace.id)
    logItem('delivery', 'Accepted, delivered, skipped and dead-lettered (by reason) per 5 minutes', deliveryQuery, 'timechart', appInsights.id)
    logItem('dead-letters', 'Dead letters by reason', deadLetterQuery, 'table', appInsights.id)
    logItem('klaviyo', 'Klaviyo requests by endpoint (every try) with their 429 share', klaviyoQuery, 'table', appInsights.id)
    logItem('klaviyo-429', 'Klaviyo 429 answers by endpoint per 5 minutes', throttledQuery, 'timechart', appInsights.id)
    logItem('held-back', 'Calls held back by the relay\'s own rate limiter, by endpoint', heldBackQuery, 'timechart', appInsights.id)
    logItem('import-jobs', 'Import jobs: how many settled in each state and how long they waited', importJobQuery, 'table', appInsights.id)
  ]
  isLocked: false
  fallbackResourceIds: [ appInsights.id ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = if (deployWorkbook) {
  name: guid(resourceGroup().id, environmentName, 'klaviyo-relay-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Klaviyo relay (${environmentName})'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: string(workbookContent)
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (notify) {
  name: 'ag-klaviyo-relay-${environmentName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'relay'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

resource deadLetterAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertOnDeadLetters) {
  name: 'alert-klaviyo-relay-dead-letters-${environmentName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Klaviyo relay (${environmentName}): events dead-lettered'
    description: 'Events were dead-lettered in the last 15 minutes (one alert per reason). Look at the workbook\'s "Dead letters by reason", fix the cause, then POST /api/dead-letters/replay?reason=<reason>.'
    severity: 2
    enabled: true
    scopes: [ appInsights.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: deadLetterAlertQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'DeadLettered'
          dimensions: [
            {
              name: 'Reason'
              operator: 'Include'
              values: [ '*' ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource unauthorizedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertOnKlaviyoUnauthorized) {
  name: 'alert-klaviyo-relay-unauthorized-${environmentName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Klaviyo relay (${environmentName}): Klaviyo answers 401/403'
    description: 'Klaviyo refused the relay\'s key (401) or a scope (403) in the last 5 minutes: check Klaviyo__PrivateApiKey and its scopes. The events are dead-lettered as KlaviyoUnauthorized; replay them once fixed.'
    severity: 1
    enabled: true
    scopes: [ appInsights.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: unauthorizedAlertQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'Refused'
          dimensions: [
            {
              name: 'Endpoint'
              operator: 'Include'
              values: [ '*' ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

// Service Bus platform metrics reach Log Analytics (table AzureMetrics) only through a diagnostic setting.
resource serviceBusMetrics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (alertOnBacklogGrowing) {
  name: 'klaviyo-relay-metrics-to-workspace'
  scope: namespace
  properties: {
    workspaceId: workspace.id
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource backlogAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertOnBacklogGrowing) {
  name: 'alert-klaviyo-relay-backlog-growing-${environmentName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Klaviyo relay (${environmentName}): backlog growing for 15 minutes'
    description: 'The events queue\'s active messages grew in every 5-minute step for 15 minutes and are at least ${backlogGrowingMinimum}: the relay is not keeping up (Klaviyo rate limits, a paused endpoint, too few instances).'
    severity: 2
    enabled: true
    scopes: [ workspace.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT20M'
    criteria: {
      allOf: [
        {
          query: replace(replace(backlogAlertQuery, '{namespaceId}', namespace.id), '{minimum}', string(backlogGrowingMinimum))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
  dependsOn: [
    serviceBusMetrics
  ]
}

output workbookId string = deployWorkbook ? workbook.id : ''
output alertNames array = filter([
  alertOnDeadLetters ? deadLetterAlert.name : ''
  alertOnBacklogGrowing ? backlogAlert.name : ''
  alertOnKlaviyoUnauthorized ? unauthorizedAlert.name : ''
], name => !empty(name))
