using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>How the fake answers one request.</summary>
internal abstract record Fault
{
    /// <summary>Headers announcing <paramref name="DeclaredLength"/> bytes, then <paramref name="Partial"/>, then nothing.</summary>
    public sealed record StallBody(int Status, string Partial, int DeclaredLength) : Fault;

    /// <summary>A body of <paramref name="TotalBytes"/>: <paramref name="Prefix"/>, a JSON string of filler, <paramref name="Suffix"/>.</summary>
    public sealed record HugeBody(int Status, string Prefix, string Suffix, int TotalBytes) : Fault;

    /// <summary>Nothing for <paramref name="Delay"/>, then the normal answer.</summary>
    public sealed record SlowHeaders(TimeSpan Delay) : Fault;

    /// <summary>Headers announcing <paramref name="DeclaredLength"/> bytes, <paramref name="Partial"/>, then a TCP reset.</summary>
    public sealed record ResetMidBody(int Status, string Partial, int DeclaredLength) : Fault;

    /// <summary>A complete answer with any body (garbage included).</summary>
    public sealed record Answer(int Status, string Body) : Fault;
}

/// <summary>
/// Klaviyo played by a raw HTTP/1.1 server on 127.0.0.1 (a port the OS picks), for faults WireMock cannot make: a body
/// that stalls after the headers, a reset mid-body, a body of many megabytes. Each request to a path takes the next
/// fault queued for that path; without one it gets Klaviyo's normal answer (events 202, profile-import 200 with
/// <c>data.id</c>, lists 204, subscriptions 202).
/// </summary>
internal sealed class FaultyKlaviyo : IDisposable
{
    public const string ProfileId = "01NORMALPROFILE";

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Fault>> _faults = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<ReceivedRequest> _received = new();
    private readonly ConcurrentBag<TcpClient> _connections = [];

    private FaultyKlaviyo()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _ = AcceptAsync();
    }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public IReadOnlyList<ReceivedRequest> Received => [.. _received];

    public int Count(string path) => _received.Count(r => r.Path == path);

    /// <summary>Waits (10 s at most) until <paramref name="count"/> requests to <paramref name="path"/> have arrived:
    /// recorded on arrival, before any answer, so a stalled call is seen while it stalls.</summary>
    public async Task WaitForCountAsync(string path, int count, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Count(path) < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new AssertFailedException($"{Count(path)} of {count} expected call(s) to {path} arrived in 10 s.");
            }
            await Task.Delay(10, cancellationToken);
        }
    }

    public static FaultyKlaviyo Start() => new();

    public FaultyKlaviyo Then(string path, Fault fault, int times = 1)
    {
        var queue = _faults.GetOrAdd(path, _ => new ConcurrentQueue<Fault>());
        for (var i = 0; i < times; i++)
        {
            queue.Enqueue(fault);
        }
        return this;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var connection in _connections)
        {
            connection.Dispose();
        }
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _connections.Add(client);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        try
        {
            var stream = client.GetStream();
            while (!_stop.IsCancellationRequested)
            {
                var request = await ReadRequestAsync(stream, _stop.Token);
                if (request is null)
                {
                    return;
                }
                _received.Enqueue(request);
                var fault = _faults.TryGetValue(request.Path, out var queue) && queue.TryDequeue(out var next) ? next : null;
                if (!await AnswerAsync(client, stream, request.Path, fault))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the client went away (it gave up on a stalled or huge answer): nothing to do
        }
        finally
        {
            client.Dispose();
        }
    }

    /// <summary>Writes the answer; false when the connection is finished with (held, reset or closed).</summary>
    private async Task<bool> AnswerAsync(TcpClient client, NetworkStream stream, string path, Fault? fault)
    {
        switch (fault)
        {
            case null:
                await WriteAsync(stream, Normal(path));
                return true;
            case Fault.Answer answer:
                await WriteAsync(stream, (answer.Status, answer.Body));
                return true;
            case Fault.SlowHeaders slow:
                await Task.Delay(slow.Delay, _stop.Token);
                await WriteAsync(stream, Normal(path));
                return true;
            case Fault.StallBody stall:
                await WriteHeadAsync(stream, stall.Status, stall.DeclaredLength);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(stall.Partial), _stop.Token);
                await stream.FlushAsync(_stop.Token);
                await Task.Delay(Timeout.Infinite, _stop.Token);
                return false;
            case Fault.ResetMidBody reset:
                await WriteHeadAsync(stream, reset.Status, reset.DeclaredLength);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(reset.Partial), _stop.Token);
                await stream.FlushAsync(_stop.Token);
                await Task.Delay(100, _stop.Token);
                client.Client.LingerState = new LingerOption(true, 0); // close with RST
                client.Client.Close();
                return false;
            case Fault.HugeBody huge:
                var prefix = Encoding.UTF8.GetBytes(huge.Prefix);
                var suffix = Encoding.UTF8.GetBytes(huge.Suffix);
                await WriteHeadAsync(stream, huge.Status, huge.TotalBytes);
                await stream.WriteAsync(prefix, _stop.Token);
                var filler = new byte[64 * 1024];
                Array.Fill(filler, (byte)'x');
                for (var left = huge.TotalBytes - prefix.Length - suffix.Length; left > 0; left -= filler.Length)
                {
                    await stream.WriteAsync(filler.AsMemory(0, Math.Min(left, filler.Length)), _stop.Token);
                }
                await stream.WriteAsync(suffix, _stop.Token);
                return true;
            default:
                throw new InvalidOperationException($"Unknown fault {fault}");
        }
    }

    private static (int Status, string Body) Normal(string path) => path switch
    {
        "/api/profile-import" => (200, FakeKlaviyo.ProfileAnswer(ProfileId)),
        _ when path.StartsWith("/api/lists/", StringComparison.Ordinal) => (204, ""),
        _ => (202, ""),
    };

    private async Task WriteAsync(NetworkStream stream, (int Status, string Body) answer)
    {
        var body = Encoding.UTF8.GetBytes(answer.Body);
        await WriteHeadAsync(stream, answer.Status, body.Length);
        await stream.WriteAsync(body, _stop.Token);
        await stream.FlushAsync(_stop.Token);
    }

    private Task WriteHeadAsync(NetworkStream stream, int status, long contentLength)
    {
        var head = $"HTTP/1.1 {status} {(HttpStatusCode)status}\r\nContent-Type: application/vnd.api+json\r\nContent-Length: {contentLength}\r\n\r\n";
        return stream.WriteAsync(Encoding.ASCII.GetBytes(head), _stop.Token).AsTask();
    }

    private static async Task<ReceivedRequest?> ReadRequestAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (buffer.Count < 4 || !(buffer[^4] == '\r' && buffer[^3] == '\n' && buffer[^2] == '\r' && buffer[^1] == '\n'))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                return null;
            }
            buffer.Add(one[0]);
        }
        var lines = Encoding.ASCII.GetString([.. buffer]).Split("\r\n");
        var requestLine = lines[0].Split(' ');
        var headers = lines.Skip(1).Where(l => l.Contains(':', StringComparison.Ordinal))
            .ToDictionary(l => l[..l.IndexOf(':', StringComparison.Ordinal)].Trim(), l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim(), StringComparer.OrdinalIgnoreCase);
        var length = headers.TryGetValue("Content-Length", out var value) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return new ReceivedRequest(requestLine[0], requestLine[1], headers, Encoding.UTF8.GetString(body));
    }
}
