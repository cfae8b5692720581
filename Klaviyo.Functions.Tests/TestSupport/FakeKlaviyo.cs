using System.Net;
using System.Net.Sockets;
using System.Text;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>A real HTTP server on 127.0.0.1 (own free port) playing Klaviyo. A call no test set up an answer for fails
/// the test when the fake is disposed (WireMock answers it 404 meanwhile).</summary>
internal sealed class FakeKlaviyo : IDisposable
{
    private FakeKlaviyo(WireMockServer server) => Server = server;

    public WireMockServer Server { get; }

    public string BaseUrl => Server.Url!;

    public static FakeKlaviyo Start()
    {
        for (var tries = 0; ; tries++)
        {
            try
            {
                return new FakeKlaviyo(WireMockServer.Start(new WireMockServerSettings { Urls = [$"http://127.0.0.1:{FreePort()}"] }));
            }
            catch (Exception) when (tries < 5)
            {
                // another test took the port between probe and bind
            }
        }
    }

    /// <summary>A loopback port with nothing listening (for connection-refused cases).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public FakeKlaviyo Answer(string path, int status, string? body = null, IDictionary<string, string>? headers = null, TimeSpan? delay = null)
    {
        Server.Given(Request.Create().WithPath(path).UsingPost()).RespondWith(Build(status, body, headers, delay));
        return this;
    }

    /// <summary>Answers DELETEs of <paramref name="path"/> (list membership removals).</summary>
    public FakeKlaviyo AnswerDelete(string path, int status, string? body = null)
    {
        Server.Given(Request.Create().WithPath(path).UsingDelete()).RespondWith(Build(status, body, null, null));
        return this;
    }

    /// <summary>Answers GETs of <paramref name="path"/>; with <paramref name="query"/>, only those carrying that query
    /// parameter (taking precedence over an answer without one for the same path).</summary>
    public FakeKlaviyo AnswerGet(string path, int status, string? body = null, IDictionary<string, string>? headers = null, (string Name, string Value)? query = null)
    {
        var request = Request.Create().WithPath(path).UsingGet();
        if (query is { } q)
        {
            request = request.WithParam(q.Name, q.Value);
        }
        Server.Given(request).AtPriority(query is null ? 10 : 1).RespondWith(Build(status, body, headers, null));
        return this;
    }

    /// <summary>Answers the listed statuses in turn, then the last one for ever.</summary>
    public FakeKlaviyo AnswerInTurn(string path, params (int Status, string? Body)[] answers) =>
        AnswerInTurnWithHeaders(path, [.. answers.Select(a => (a.Status, a.Body, (IDictionary<string, string>?)null))]);

    /// <summary>As <see cref="AnswerInTurn"/>, with response headers (for example Retry-After) per answer.</summary>
    public FakeKlaviyo AnswerInTurnWithHeaders(string path, params (int Status, string? Body, IDictionary<string, string>? Headers)[] answers)
    {
        var scenario = $"{path}-{Guid.NewGuid():N}";
        for (var i = 0; i < answers.Length; i++)
        {
            var request = Server.Given(Request.Create().WithPath(path).UsingPost()).InScenario(scenario);
            var builder = i == 0 ? request : request.WhenStateIs($"s{i}");
            var next = i < answers.Length - 1 ? builder.WillSetStateTo($"s{i + 1}") : builder;
            next.RespondWith(Build(answers[i].Status, answers[i].Body, answers[i].Headers, null));
        }
        return this;
    }

    public static string ProfileAnswer(string id) => "{\"data\":{\"type\":\"profile\",\"id\":\"" + id + "\",\"attributes\":{}}}";

    public static string ErrorAnswer(int status, string code, string detail, string? pointer) =>
        $$$"""{"errors":[{"id":"e-1","status":{{{status}}},"code":"{{{code}}}","title":"Error","detail":"{{{detail}}}","source":{{{(pointer is null ? "{}" : "{\"pointer\":\"" + pointer + "\"}")}}},"links":{},"meta":{}}]}""";

    public IReadOnlyList<ReceivedRequest> Received => Server.LogEntries
        .OrderBy(e => e.RequestMessage.DateTime)
        .Select(e => new ReceivedRequest(
            e.RequestMessage.Method,
            e.RequestMessage.Path,
            e.RequestMessage.Headers?.ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase) ?? [],
            e.RequestMessage.BodyAsBytes is { } bytes ? Encoding.UTF8.GetString(bytes) : e.RequestMessage.Body ?? "",
            e.ResponseMessage?.StatusCode is { } status ? Convert.ToInt32(status, System.Globalization.CultureInfo.InvariantCulture) : 0))
        .ToList();

    /// <summary>WireMock logs a request once it has answered; a delayed answer shows up late.</summary>
    public async Task<IReadOnlyList<ReceivedRequest>> WaitForReceivedAsync(int count, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Server.LogEntries.Count() < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, cancellationToken);
        }
        return Received;
    }

    public IReadOnlyList<string> ReceivedPaths => Received.Select(r => r.Path).ToList();

    /// <summary>The calls no <see cref="Answer"/> was set up for (WireMock answered them 404).</summary>
    public IReadOnlyList<string> UnexpectedCalls => Server.LogEntries
        .Where(e => e.MappingGuid is null || e.MappingGuid == Guid.Empty)
        .Select(e => $"{e.RequestMessage.Method} {e.RequestMessage.Path}")
        .ToList();

    /// <summary>Fails the test when the fake was called where no answer was set up: a 404 the relay classifies as a
    /// rejection would otherwise pass for a tested outcome.</summary>
    public void AssertNoUnexpectedCalls()
    {
        var unexpected = UnexpectedCalls;
        if (unexpected.Count > 0)
        {
            throw new AssertFailedException($"The fake Klaviyo got {unexpected.Count} call(s) no test set up: {string.Join(", ", unexpected.Distinct())}");
        }
    }

    /// <summary>Stops the server, then <see cref="AssertNoUnexpectedCalls"/>.</summary>
    public void Dispose()
    {
        Server.Stop();
        AssertNoUnexpectedCalls();
    }

    private static IResponseBuilder Build(int status, string? body, IDictionary<string, string>? headers, TimeSpan? delay)
    {
        var response = Response.Create().WithStatusCode(status);
        if (body is not null)
        {
            response = response.WithHeader("Content-Type", "application/vnd.api+json").WithBody(body);
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            response = response.WithHeader(name, value);
        }
        if (delay is { } d)
        {
            response = response.WithDelay(d);
        }
        return response;
    }
}

/// <param name="Status">The status the fake answered (0 when unknown).</param>
internal sealed record ReceivedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body, int Status = 0);
