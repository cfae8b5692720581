using System.Net;
using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Data.Sqlite;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Issue 20 on the local host: the built app in local mode over HTTP, Klaviyo a real HTTP fake. A retry waits about
/// 30 s, then 2 min (spec 6); the test moves a scheduled retry's due time to now in the app's own database (as that
/// much time passing would), so it runs in seconds. Everything else is the app's own doing.
/// </summary>
[TestClass]
public sealed class LocalOrderingTests
{
    private const string ApiKey = "pk_e2e_ordering_key";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    private static string Identify(string messageId, bool subscribe, string name, string listId = "LIST1") =>
        "{\"type\":\"identify\",\"userId\":\"person-1\",\"messageId\":\"" + messageId + "\",\"traits\":{\"email\":\"person@example.com\",\"firstName\":\"" + name
        + "\",\"properties\":{\"listId\":\"" + listId + "\",\"subscribe\":" + (subscribe ? "true" : "false") + "}}}";

    [TestMethod]
    public async Task LocalMode_OlderSubscribeFailsTwice_NewerUnsubscribeGoesAfterIt_TrackGoesAtOnce()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(KlaviyoApi.ProfileImportPath, 200, FakeKlaviyo.ProfileAnswer("01PROFILE"))
            .AnswerInTurn(KlaviyoApi.SubscribeProfilesPath, (503, null), (503, null), (202, null))
            .Answer(KlaviyoApi.UnsubscribeProfilesPath, 202)
            .Answer(KlaviyoApi.CreateEventPath, 202);
        var database = TempPath();
        await using var app = await StartAsync(klaviyo.BaseUrl, database);

        await PostAsync(app, "[" + Identify("a", subscribe: true, "Old") + "]");
        await WaitUntilAsync(() => Count(klaviyo, KlaviyoApi.SubscribeProfilesPath) == 1);
        await WaitForRetryAsync(database, "a", attempt: 2);

        await PostAsync(app, "[" + Identify("b", subscribe: false, "New") + ",{\"type\":\"track\",\"userId\":\"person-1\",\"messageId\":\"t-1\",\"event\":\"Viewed Page\"}]");
        await WaitUntilAsync(() => Count(klaviyo, KlaviyoApi.CreateEventPath) == 1);
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.CancellationToken);
        Assert.AreEqual(0, Count(klaviyo, KlaviyoApi.UnsubscribeProfilesPath), "B is held while A waits for its retry; the track went at once");

        await DueNowAsync(database, "a");
        await WaitUntilAsync(() => Count(klaviyo, KlaviyoApi.SubscribeProfilesPath) == 2);
        await WaitForRetryAsync(database, "a", attempt: 3);
        Assert.AreEqual(0, Count(klaviyo, KlaviyoApi.UnsubscribeProfilesPath), "still held after A's second failure");
        await DueNowAsync(database, "a");
        await WaitUntilAsync(() => Count(klaviyo, KlaviyoApi.UnsubscribeProfilesPath) == 1);

        var consent = klaviyo.Received.Where(r => r.Status is >= 200 and < 300 && r.Path is KlaviyoApi.SubscribeProfilesPath or KlaviyoApi.UnsubscribeProfilesPath).Select(r => r.Path).ToArray();
        Assert.AreSequenceEqual(new[] { KlaviyoApi.SubscribeProfilesPath, KlaviyoApi.UnsubscribeProfilesPath }, consent, "A's subscription, then B's unsubscription: the person ends unsubscribed");
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("3 delivered, 0 skipped, 0 dead-lettered, 0 still queued", app.Output);
    }

    [TestMethod]
    public async Task LocalMode_OlderSubscribeDeadLettered_TheNextGoesAfterItAlone_ThenTheLast()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(KlaviyoApi.ProfileImportPath, 200, FakeKlaviyo.ProfileAnswer("01PROFILE"))
            .AnswerInTurn(KlaviyoApi.SubscribeProfilesPath, (503, null), (400, FakeKlaviyo.ErrorAnswer(400, "invalid", "list not found", null)))
            .Answer(KlaviyoApi.UnsubscribeProfilesPath, 202);
        var database = TempPath();
        await using var app = await StartAsync(klaviyo.BaseUrl, database);

        await PostAsync(app, "[" + Identify("a", subscribe: true, "Old") + "]");
        await WaitForRetryAsync(database, "a", attempt: 2);
        await PostAsync(app, "[" + Identify("b", subscribe: false, "Newer") + "," + Identify("c", subscribe: false, "Newest") + "]");
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.CancellationToken);
        Assert.AreEqual(1, Count(klaviyo, KlaviyoApi.ProfileImportPath), "B and C are held while A waits");

        await DueNowAsync(database, "a");
        await WaitUntilAsync(() => Count(klaviyo, KlaviyoApi.UnsubscribeProfilesPath) == 2);

        var calls = klaviyo.Received.Select(r => r.Path == KlaviyoApi.ProfileImportPath ? "import " + (r.Body.Contains("Newest", StringComparison.Ordinal) ? "C" : r.Body.Contains("Newer", StringComparison.Ordinal) ? "B" : "A") : r.Path).ToList();
        Assert.AreSequenceEqual(
            new[] { "import A", KlaviyoApi.SubscribeProfilesPath, "import A", KlaviyoApi.SubscribeProfilesPath, "import B", KlaviyoApi.UnsubscribeProfilesPath, "import C", KlaviyoApi.UnsubscribeProfilesPath },
            calls.ToArray(),
            "after A's dead letter B goes first, alone; C only once B is settled");
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.Contains("2 delivered, 0 skipped, 1 dead-lettered, 0 still queued", app.Output);
    }

    private string TempPath() => Path.Combine(Directory.CreateTempSubdirectory("klaviyo-ordering-e2e-").FullName, "relay.db");

    private static int Count(FakeKlaviyo klaviyo, string path) => klaviyo.Received.Count(r => r.Path == path);

    private async Task<LocalAppProcess> StartAsync(string klaviyoBaseUrl, string database) =>
        await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = ApiKey,
            ["Klaviyo__BaseUrl"] = klaviyoBaseUrl,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = database + ".dead.jsonl",
            ["Relay__MaxInCallRetries"] = "0",
        }, Patience);

    private async Task PostAsync(LocalAppProcess app, string body)
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using var response = await http.PostAsync("/api/events", new StringContent(body, Encoding.UTF8, "application/json"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
    }

    private async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("the condition never held");
            }
            await Task.Delay(50, TestContext.CancellationToken);
        }
    }

    private static SqliteConnection Connect(string database)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false, DefaultTimeout = 10 }.ToString());
        connection.Open();
        return connection;
    }

    /// <summary>Waits until the event is scheduled for the given attempt (its retry is committed).</summary>
    private async Task WaitForRetryAsync(string database, string messageId, int attempt)
    {
        await WaitUntilAsync(() =>
        {
            using var connection = Connect(database);
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM messages WHERE event_message_id = $id AND attempt = $attempt AND state = 0";
            command.Parameters.AddWithValue("$id", messageId);
            command.Parameters.AddWithValue("$attempt", attempt);
            return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 1;
        });
    }

    /// <summary>The retry's wait has passed: its due time becomes now.</summary>
    private static async Task DueNowAsync(string database, string messageId)
    {
        await using var connection = Connect(database);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA busy_timeout = 10000; UPDATE messages SET due = 0 WHERE event_message_id = $id AND state = 0";
        command.Parameters.AddWithValue("$id", messageId);
        Assert.AreEqual(1, await command.ExecuteNonQueryAsync());
    }
}
