using Klaviyo.Functions.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Klaviyo.Functions.Tests.Diagnostics;

/// <summary>Issue 18 item 6 for the Azure composition (the Functions worker runs ASP.NET Core too, and cannot be started
/// here; local mode is covered end to end by <c>KeysNeverLoggedTests</c>): every logger the app's factory hands out masks
/// <c>?code=</c> values in the message, in structured values and in exception messages.</summary>
[TestClass]
public sealed class LogRedactionTests
{
    private const string Key = "FunctionKeyNeverLogged-0a1b2c";

    // The shape of ASP.NET Core's request-start line (Microsoft.AspNetCore.Hosting.Diagnostics, EventId 1).
    private static readonly Action<ILogger, string, string, string, Exception?> RequestStarting =
        LoggerMessage.Define<string, string, string>(LogLevel.Information, new EventId(1, "RequestStarting"), "Request starting {Method} {Path}{QueryString}");

    private static (ServiceProvider Services, FakeLogCollector Logs) BuildAzureServices()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Klaviyo:PrivateApiKey"] = "pk_redaction_test",
            ["ServiceBus"] = "Endpoint=sb://relay-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
            ["EventsQueueName"] = "klaviyo-events",
        }).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging(logging => logging.AddFakeLogging().SetMinimumLevel(LogLevel.Trace));
        services.AddKlaviyoRelay(configuration);
        var provider = services.BuildServiceProvider();
        return (provider, provider.GetFakeLogCollector());
    }

    [TestMethod]
    [DataRow("?code=" + Key)]
    [DataRow("?x=1&CODE=" + Key)]
    [DataRow("?co%64e=" + Key)]
    [DataRow("?%63ode=" + Key + "&max=5")]
    public void RequestStartLine_KeyMaskedInMessageAndValues(string query)
    {
        var (services, logs) = BuildAzureServices();
        using (services)
        {
            RequestStarting(services.GetRequiredService<ILoggerFactory>().CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics"), "POST", "/api/events", query, null);

            var record = logs.GetSnapshot().Single();
            Assert.DoesNotContain(Key, record.Message);
            Assert.Contains("=***", record.Message);
            Assert.StartsWith("Request starting POST /api/events?", record.Message);
            Assert.IsTrue(record.StructuredState!.All(kv => kv.Value?.Contains(Key, StringComparison.Ordinal) != true), "structured values are masked too");
            Assert.AreEqual("POST", record.GetStructuredStateValue("Method"));
        }
    }

    [TestMethod]
    public void ExceptionMessage_WithAKey_IsMasked_AndOtherLinesPassUntouched()
    {
        var (services, logs) = BuildAzureServices();
        using (services)
        {
            var logger = services.GetRequiredService<ILogger<LogRedactionTests>>();
            logger.LogWarning(new InvalidOperationException("Invalid request line: 'POST /api/ev ents?code=" + Key + " HTTP/1.1'"), "Bad request");
            logger.LogInformation("Accepted {Count} event(s) for {Path}", 3, "/api/events?max=5");

            var (warning, info) = (logs.GetSnapshot()[0], logs.GetSnapshot()[1]);
            Assert.DoesNotContain(Key, warning.Exception!.ToString());
            Assert.Contains("System.InvalidOperationException", warning.Exception.Message);
            Assert.Contains("?code=*** HTTP/1.1", warning.Exception.Message);
            Assert.AreEqual("Accepted 3 event(s) for /api/events?max=5", info.Message);
        }
    }

    [TestMethod]
    public void AddKeyRedactingLogs_Twice_WrapsTheFactoryOnce()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddKeyRedactingLogs();
        services.AddKeyRedactingLogs();
        using var provider = services.BuildServiceProvider();

        var factory = provider.GetRequiredService<ILoggerFactory>();

        var redacting = Assert.IsInstanceOfType<RedactingLoggerFactory>(factory);
        Assert.IsInstanceOfType<LoggerFactory>(redacting.Inner, "one wrapper around the framework's factory, not two");
    }

    [TestMethod]
    [DataRow("code=abc", "code=abc")]
    [DataRow("?code=abc", "?code=***")]
    [DataRow("https://h/api?a=1&code=abc#f", "https://h/api?a=1&code=***#f")]
    [DataRow("?codes=abc&decode=x", "?codes=abc&decode=x")]
    [DataRow("'?code=abc' and &Code=def", "'?code=***' and &Code=***")]
    public void Redact_MasksOnlyTheKeyParameter(string text, string expected) => Assert.AreEqual(expected, LogRedaction.Redact(text));
}
