namespace Klaviyo.Functions.Queue;

/// <summary>The queue cannot take events right now (for example local mode is shutting down). The ingest answers 503
/// with Retry-After, as for a Service Bus fault.</summary>
internal class QueueUnavailableException(string message) : Exception(message);
