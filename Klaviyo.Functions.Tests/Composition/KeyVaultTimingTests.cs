using System.Text;
using System.Text.Json;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Health;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Klaviyo.Functions.Tests.Composition;

/// <summary>
/// First provision: the app starts before App Service has resolved its Key Vault references, so
/// <c>Klaviyo__PrivateApiKey</c> still holds the literal <c>@Microsoft.KeyVault(...)</c>. The host built from the
/// composition root (<see cref="RelayServiceCollectionExtensions.AddKlaviyoRelay"/>, with start-up validation) must
/// start, report the setting on /api/health, keep accepting events, and put deliveries off without calling Klaviyo.
/// </summary>
[TestClass]
public sealed class KeyVaultTimingTests
{
    private const string Reference = "@Microsoft.KeyVault(SecretUri=https://kv-timing.vault.azure.net/secrets/klaviyo-private-api-key/)";

    public TestContext TestContext { get; set; } = null!;

    private static async Task<(IHost Host, RecordingEventQueue Queue)> StartAsync(string baseUrl, CancellationToken cancellationToken,
        string privateApiKey = Reference, string? signingSecret = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var settings = new Dictionary<string, string?>
        {
            ["Klaviyo:PrivateApiKey"] = privateApiKey,
            ["Klaviyo:BaseUrl"] = baseUrl,
            ["ServiceBus:fullyQualifiedNamespace"] = "relay-test.servicebus.windows.net",
            ["EventsQueueName"] = "klaviyo-events",
        };
        if (signingSecret is not null)
        {
            settings["Ingest:SigningSecret"] = signingSecret;
        }
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddKlaviyoRelay(builder.Configuration);
        var queue = new RecordingEventQueue();
        builder.Services.AddSingleton<IEventQueue>(queue);
        var host = builder.Build();
        await host.StartAsync(cancellationToken); // runs ValidateOnStart, which used to refuse the reference
        return (host, queue);
    }

    [TestMethod]
    public async Task UnresolvedKeyVaultReference_AppStarts_HealthNamesTheSetting_IngestAccepts_RelayPutsOffWithoutCallingKlaviyo()
    {
        using var klaviyo = FakeKlaviyo.Start();
        klaviyo.Answer("/api/events", 202);
        var (host, queue) = await StartAsync(klaviyo.BaseUrl, TestContext.CancellationToken);
        using var _ = host;

        // Health: 503, naming the setting and never its value.
        var health = (JsonResult)ActivatorUtilities.CreateInstance<HealthFunction>(host.Services).Run(new DefaultHttpContext().Request);
        var healthBody = JsonSerializer.Serialize(health.Value);
        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, health.StatusCode, healthBody);
        using (var document = JsonDocument.Parse(healthBody))
        {
            var check = document.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "KeyVaultReferences");
            Assert.AreEqual("fail", check.GetProperty("status").GetString());
            Assert.Contains("Klaviyo__PrivateApiKey", check.GetProperty("settings").EnumerateArray().Select(s => s.GetString()).ToList());
        }
        Assert.DoesNotContain("kv-timing", healthBody);

        // Ingest: the queue does not depend on the key.
        var context = new DefaultHttpContext();
        context.Request.Method = HttpMethods.Post;
        context.Request.ContentType = "application/json";
        var json = """{"type":"track","event":"Order Completed","userId":"u1","messageId":"kv-1","properties":{"revenue":42}}""";
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(json));
        context.Request.ContentLength = context.Request.Body.Length;
        context.Response.Body = new MemoryStream();
        var ingest = await ActivatorUtilities.CreateInstance<IngestFunction>(host.Services).Events(context.Request);
        await ingest.ExecuteResultAsync(new ActionContext(context, new RouteData(), new ActionDescriptor()));
        Assert.AreEqual(StatusCodes.Status202Accepted, context.Response.StatusCode);
        var queued = queue.Sent.Single();

        // Relay: twice in a row (the put-off copy comes back while the reference is still unresolved).
        var message = ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromBytes(queued.Body), messageId: queued.MessageId, subject: queued.Subject,
            properties: new Dictionary<string, object> { [MessageProperties.Attempt] = 3, [MessageProperties.EventMessageId] = "kv-1" },
            lockTokenGuid: Guid.NewGuid(), sequenceNumber: 41, deliveryCount: 1);
        var actions = new RecordingMessageActions();
        var function = ActivatorUtilities.CreateInstance<RelayFunction>(host.Services);
        await function.RunAsync(message, actions, TestContext.CancellationToken);

        var (copy, at) = queue.Scheduled.Single();
        Assert.AreEqual(3, copy.Attempt, "putting off must not spend the attempt");
        Assert.AreEqual("kv-1", copy.EventMessageId);
        Assert.AreNotEqual(queued.MessageId, copy.MessageId, "the copy needs its own id, or duplicate detection drops it");
        Assert.IsGreaterThan(DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30), at);
        Assert.AreSequenceEqual(new[] { "Complete" }, actions.Calls.Select(c => c.Action).ToArray());

        var again = ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromBytes(copy.Body), messageId: copy.MessageId, subject: copy.Subject,
            properties: new Dictionary<string, object> { [MessageProperties.Attempt] = copy.Attempt, [MessageProperties.EventMessageId] = copy.EventMessageId! },
            lockTokenGuid: Guid.NewGuid(), sequenceNumber: 97, deliveryCount: 1);
        await function.RunAsync(again, actions, TestContext.CancellationToken);

        Assert.HasCount(2, queue.Scheduled);
        var second = queue.Scheduled[1].Event;
        Assert.AreEqual(3, second.Attempt);
        Assert.AreNotEqual(copy.MessageId, second.MessageId);
        Assert.DoesNotContain("DeadLetter", actions.Calls.Select(c => c.Action).ToList());
        Assert.IsEmpty(klaviyo.Received, "no Klaviyo call may be made with an unresolved key");

        await host.StopAsync(TestContext.CancellationToken);
    }

    [TestMethod]
    public async Task UnresolvedKeyVaultReference_ImportJobTracker_PutOffWithoutAskingKlaviyoAndNothingDeadLettered()
    {
        using var klaviyo = FakeKlaviyo.Start();
        var (host, queue) = await StartAsync(klaviyo.BaseUrl, TestContext.CancellationToken);
        using var _ = host;
        // One profile, email a@example.com (identifiers: id, email, phone, external_id, anonymous_id, _kx).
        var ticket = global::Klaviyo.Functions.Bulk.JobTicket.ForJob("/api/profile-bulk-import-jobs", "job-kv", ["\u001fa@example.com\u001f\u001f\u001f\u001f"], [[41]], DateTimeOffset.UtcNow);
        var tracker = RelayTestHost.Message(Encoding.UTF8.GetString(ticket.Serialize()), RelayMessage.TrackerMessageId("job-kv", 41, 1), subject: RelayMessage.ImportJobSubject);
        var actions = new RecordingMessageActions();

        await ActivatorUtilities.CreateInstance<RelayFunction>(host.Services).RunAsync(tracker, actions, TestContext.CancellationToken);

        Assert.IsEmpty(klaviyo.Received, "a job poll with an unresolved key would be answered 401 and dead-letter the job's messages");
        var (next, at) = queue.Scheduled.Single();
        Assert.AreEqual(RelayMessage.ImportJobSubject, next.Subject);
        Assert.AreEqual(RelayMessage.TrackerMessageId("job-kv", 41, 2), next.MessageId);
        Assert.IsGreaterThan(DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30), at, "asked again once the reference may have resolved");
        Assert.AreSequenceEqual(new[] { "Complete" }, actions.Calls.Select(c => c.Action).ToArray());
        await host.StopAsync(TestContext.CancellationToken);
    }

    [TestMethod]
    public async Task UnresolvedSigningSecret_AppStarts_HealthNamesTheSetting_IngestAnswers503WithRetryAfterAndQueuesNothing()
    {
        const string signingReference = "@Microsoft.KeyVault(SecretUri=https://kv-timing.vault.azure.net/secrets/ingest-signing-secret/)";
        var (host, queue) = await StartAsync("https://a.klaviyo.com", TestContext.CancellationToken,
            privateApiKey: "pk_timing_0123456789", signingSecret: signingReference);
        using var _ = host;

        var health = (JsonResult)ActivatorUtilities.CreateInstance<HealthFunction>(host.Services).Run(new DefaultHttpContext().Request);
        var healthBody = JsonSerializer.Serialize(health.Value);
        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, health.StatusCode, healthBody);
        using (var document = JsonDocument.Parse(healthBody))
        {
            var check = document.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "KeyVaultReferences");
            Assert.AreEqual("Ingest__SigningSecret", check.GetProperty("settings").EnumerateArray().Single().GetString());
        }
        Assert.DoesNotContain("kv-timing", healthBody);

        // Signed with the reference's own text (no secret: it is a vault URI) must not pass either.
        var json = """{"type":"track","event":"Order Completed","userId":"u1","messageId":"kv-2"}"""u8.ToArray();
        var context = new DefaultHttpContext();
        context.Request.Method = HttpMethods.Post;
        context.Request.ContentType = "application/json";
        context.Request.Headers[SignatureVerifier.HeaderName] = Signatures.Sign(json, signingReference);
        context.Request.Body = new MemoryStream(json);
        context.Request.ContentLength = json.Length;
        context.Response.Body = new MemoryStream();
        var ingest = await ActivatorUtilities.CreateInstance<IngestFunction>(host.Services).Events(context.Request);
        await ingest.ExecuteResultAsync(new ActionContext(context, new RouteData(), new ActionDescriptor()));

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
        Assert.AreEqual("10", context.Response.Headers.RetryAfter.ToString());
        var problem = Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());
        Assert.Contains("Ingest__SigningSecret", problem);
        Assert.DoesNotContain("kv-timing", problem);
        Assert.IsEmpty(queue.Sent);

        await host.StopAsync(TestContext.CancellationToken);
    }

    [TestMethod]
    public void PutOffMessageId_ReplacesEarlierWaitPartAndKeepsTheAttempt()
    {
        Assert.AreEqual("m-1\u001Fwait-41\u001Fattempt-1", RelayMessage.PutOffMessageId("m-1", 41, 1));
        Assert.AreEqual("m-1\u001Fwait-97\u001Fattempt-3", RelayMessage.PutOffMessageId("m-1\u001Fwait-41\u001Fattempt-3", 97, 3));
        Assert.AreEqual("m-1\u001Freplay-7\u001Fwait-5\u001Fattempt-2", RelayMessage.PutOffMessageId("m-1\u001Freplay-7\u001Fattempt-2", 5, 2));
        // A later real retry keeps the wait part and moves the attempt on.
        Assert.AreEqual("m-1\u001Fwait-97\u001Fattempt-4", RelayMessage.RetryMessageId("m-1\u001Fwait-97\u001Fattempt-3", 4));
        Assert.AreEqual("m-1", RelayMessage.EventMessageId("m-1\u001Fwait-97\u001Fattempt-3", new Dictionary<string, object>()));
    }
}
