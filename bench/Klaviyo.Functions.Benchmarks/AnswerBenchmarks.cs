using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// What reading one Klaviyo answer costs in KlaviyoAnswerHandler (no network: the body is a MemoryStream), beside the
/// floor of a normal profile-import answer. Memory is the point: an 8 MB answer must not cost 8 MB.
/// <c>dotnet run -c Release --project bench/Klaviyo.Functions.Benchmarks -- --filter *AnswerBenchmarks* --job short --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class AnswerBenchmarks
{
    private const int Huge = 8 * 1024 * 1024;

    private static readonly byte[] Normal = Encoding.UTF8.GetBytes("""{"data":{"type":"profile","id":"01P","attributes":{"email":"a@example.com"}}}""");
    private static readonly byte[] HugeIdFirst = Body("""{"data":{"type":"profile","id":"01HUGE","attributes":{"blob":" """.TrimEnd(), "\"}}}", Huge);
    private static readonly byte[] HugeIdLast = Body("""{"data":{"type":"profile","attributes":{"blob":" """.TrimEnd(), "\"},\"id\":\"01LATE\"}}", Huge);
    private static readonly byte[] HugeError = Body("""{"errors":[{"id":"e","code":"invalid","title":"t","detail":"d","source":{"pointer":"/data"}}],"pad":" """.TrimEnd(), "\"}", Huge);

    [Benchmark(Baseline = true)]
    public Task<HttpResponseMessage> NormalProfileAnswer() => ReadAsync(HttpStatusCode.OK, Normal);

    [Benchmark]
    public Task<HttpResponseMessage> Profile8MbIdFirst() => ReadAsync(HttpStatusCode.OK, HugeIdFirst);

    [Benchmark]
    public Task<HttpResponseMessage> Profile8MbIdLast() => ReadAsync(HttpStatusCode.OK, HugeIdLast);

    [Benchmark]
    public Task<HttpResponseMessage> Error400Of8Mb() => ReadAsync(HttpStatusCode.BadRequest, HugeError);

    private static async Task<HttpResponseMessage> ReadAsync(HttpStatusCode status, byte[] body)
    {
        using var invoker = new HttpMessageInvoker(new KlaviyoAnswerHandler { InnerHandler = new Canned(status, body) });
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://klaviyo.invalid/api/profile-import");
        return await invoker.SendAsync(request, CancellationToken.None);
    }

    private static byte[] Body(string prefix, string suffix, int total)
    {
        var bytes = new byte[total];
        Array.Fill(bytes, (byte)'x');
        Encoding.UTF8.GetBytes(prefix).CopyTo(bytes, 0);
        Encoding.UTF8.GetBytes(suffix).CopyTo(bytes, total - suffix.Length);
        return bytes;
    }

    private sealed class Canned(HttpStatusCode status, byte[] body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(status) { Content = new StreamContent(new MemoryStream(body, writable: false)), RequestMessage = request });
    }
}
