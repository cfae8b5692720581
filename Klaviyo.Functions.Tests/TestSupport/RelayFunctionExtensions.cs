using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Relay;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Tests.TestSupport;

internal static class RelayFunctionExtensions
{
    /// <summary>One message delivered alone: a batch of one, as the host hands it when nothing else is waiting.</summary>
    public static Task RunAsync(this RelayFunction function, ServiceBusReceivedMessage message, ServiceBusMessageActions actions, CancellationToken cancellationToken) =>
        function.RunAsync([message], actions, cancellationToken);
}
