using System.Text;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// The relay's services built the production way (same <c>Add…</c> calls, same HttpClient pipeline) against a
/// <see cref="FakeKlaviyo"/>, with a recording queue, every log line collected, no jitter in the retry schedule,
/// and on <see cref="SimulatedTime"/>: waits (back-offs, Retry-After, limiter windows) take no real time.
/// </summary>
internal sealed class RelayTestHost : IDisposable
{
    public const string ApiKey = "pk_test_5ecret_Key_never_to_be_logged_0123";

    private RelayTestHost(ServiceProvider services, RecordingEventQueue queue, TimeProvider time)
    {
        Services = services;
        Queue = queue;
        Logs = services.GetFakeLogCollector();
        Time = time as SimulatedTime;
    }

    public ServiceProvider Services { get; }

    public RecordingEventQueue Queue { get; }

    public FakeLogCollector Logs { get; }

    /// <summary>The host's clock; null when the test asked for real time.</summary>
    public SimulatedTime? Time { get; }

    public RelayProcessor Processor => Services.GetRequiredService<RelayProcessor>();

    public RelaySettler Settler => Services.GetRequiredService<RelaySettler>();

    /// <summary>The host's outcome policy on another clock.</summary>
    public OutcomePolicy Policy(TimeProvider clock) => ActivatorUtilities.CreateInstance<OutcomePolicy>(Services, clock);

    public KlaviyoClient Client => Services.GetRequiredService<KlaviyoClient>();

    public RelayFunction Function => ActivatorUtilities.CreateInstance<RelayFunction>(Services);

    /// <param name="configure">Runs last, before the provider is built (e.g. an extra handler on the Klaviyo client).</param>
    /// <param name="time">Default a new <see cref="SimulatedTime"/>; <see cref="TimeProvider.System"/> for tests of real sockets stalling.</param>
    public static RelayTestHost Create(string baseUrl, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configure = null, TimeProvider? time = null)
    {
        time ??= new SimulatedTime();
        var values = new Dictionary<string, string?>
        {
            ["Klaviyo:PrivateApiKey"] = ApiKey,
            ["Klaviyo:BaseUrl"] = baseUrl,
            ["Relay:InCallRetryDelay"] = "00:00:00.010",
            ["Relay:AttemptTimeout"] = "00:00:05",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values[key] = value;
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();

        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Trace).AddFakeLogging());
        services.AddSingleton(time);
        services.AddKlaviyoOptions();
        services.AddKlaviyoTransform();
        services.AddKlaviyoClient();
        services.AddRelay(configuration);

        var queue = new RecordingEventQueue();
        services.AddSingleton<IEventQueue>(queue);
        services.AddSingleton(new RetrySchedule(() => 0.5));
        configure?.Invoke(services);
        return new RelayTestHost(services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true }), queue, time);
    }

    /// <summary>Every log line with its structured values and exception, for secret checks.</summary>
    public string AllLogText() => string.Join('\n', Logs.GetSnapshot().Select(r =>
        $"{r.Category} {r.Level} {r.Id} {r.Message} {string.Join(' ', r.StructuredState?.Select(kv => $"{kv.Key}={kv.Value}") ?? [])} {r.Exception}"));

    private static long s_sequence;

    /// <summary>A received message as the trigger binds it; each gets its own sequence number unless one is given.</summary>
    public static ServiceBusReceivedMessage Message(string json, string messageId, int? attempt = null, string subject = "track", long? sequence = null)
    {
        var properties = new Dictionary<string, object>();
        if (attempt is { } a)
        {
            properties[MessageProperties.Attempt] = a;
        }
        return ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromString(json),
            messageId: messageId,
            subject: subject,
            contentType: MessageProperties.JsonContentType,
            properties: properties,
            lockTokenGuid: Guid.NewGuid(),
            sequenceNumber: sequence ?? Interlocked.Increment(ref s_sequence),
            deliveryCount: 1);
    }

    public void Dispose() => Services.Dispose();
}

/// <summary>Hand-built request plans, standing in for the transformer's.</summary>
internal static class Plans
{
    public static KlaviyoRequest Event(string messageId = "m-1") => new(
        KlaviyoEndpoint.CreateEvent,
        KlaviyoApi.CreateEventPath,
        Encoding.UTF8.GetBytes("""{"data":{"type":"event","attributes":{"properties":{},"unique_id":"MID","metric":{"data":{"type":"metric","attributes":{"name":"Order Completed"}}},"profile":{"data":{"type":"profile","attributes":{"external_id":"u1"}}}}}}""".Replace("MID", messageId, StringComparison.Ordinal)));

    public static RequestPlan Track(string messageId = "m-1") => new([PlanStep.Fixed(Event(messageId))]);

    public static RequestPlan IdentifyWithList(string listId = "Xy12") => new(
    [
        PlanStep.Fixed(new KlaviyoRequest(
            KlaviyoEndpoint.ProfileImport,
            KlaviyoApi.ProfileImportPath,
            Encoding.UTF8.GetBytes("""{"data":{"type":"profile","attributes":{"external_id":"u1","email":"a@example.com"}}}""")), yieldsProfileId: true),
        PlanStep.WithProfileId(KlaviyoEndpoint.AddProfilesToList, id => new KlaviyoRequest(
            KlaviyoEndpoint.AddProfilesToList,
            KlaviyoApi.AddProfilesToListPath(listId),
            Encoding.UTF8.GetBytes($$$"""{"data":[{"type":"profile","id":"{{{id}}}"}]}"""))),
    ]);
}
