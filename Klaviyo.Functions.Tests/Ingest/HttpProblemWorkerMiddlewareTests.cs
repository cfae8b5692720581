using System.Text.Json;
using Klaviyo.Functions.Ingest;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging.Abstractions;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>Azure (ASP.NET Core integration): a failing HTTP function answers a problem document, not the host's
/// empty 500.</summary>
[TestClass]
public sealed class HttpProblemWorkerMiddlewareTests
{
    [TestMethod]
    public async Task FunctionThrows_Answers500ProblemWithoutTheExceptionText()
    {
        var (context, http, output) = Arrange();

        await new HttpProblemWorkerMiddleware(NullLogger<HttpProblemWorkerMiddleware>.Instance)
            .Invoke(context, _ => throw new InvalidOperationException("pk_live_SECRET"));

        Assert.AreEqual(500, http.Response.StatusCode);
        Assert.AreEqual("application/problem+json", http.Response.ContentType);
        var body = JsonDocument.Parse(output.ToArray()).RootElement;
        Assert.AreEqual(500, body.GetProperty("status").GetInt32());
        Assert.DoesNotContain("SECRET", body.GetRawText());
    }

    [TestMethod]
    public async Task BodyUnreadable_AnswersFrameworkStatusAsProblem()
    {
        var (context, http, output) = Arrange();

        await new HttpProblemWorkerMiddleware(NullLogger<HttpProblemWorkerMiddleware>.Instance)
            .Invoke(context, _ => throw new BadHttpRequestException("Request body too large.", 413));

        Assert.AreEqual(413, http.Response.StatusCode);
        Assert.AreEqual("application/problem+json", http.Response.ContentType);
        Assert.AreEqual(413, JsonDocument.Parse(output.ToArray()).RootElement.GetProperty("status").GetInt32());
    }

    [TestMethod]
    public async Task NonHttpFunctionThrows_ExceptionSurfacesToTheHost()
    {
        var context = new FakeFunctionContext();

        await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => new HttpProblemWorkerMiddleware(NullLogger<HttpProblemWorkerMiddleware>.Instance)
            .Invoke(context, _ => throw new InvalidOperationException("queue trigger bug")));
    }

    private static (FakeFunctionContext Context, DefaultHttpContext Http, MemoryStream Output) Arrange()
    {
        var http = new DefaultHttpContext();
        var output = new MemoryStream();
        http.Response.Body = output;
        var context = new FakeFunctionContext();
        // Where the ASP.NET Core integration puts the request (FunctionContextExtensions.GetHttpContext).
        context.Items["HttpRequestContext"] = http;
        return (context, http, output);
    }

    private sealed class FakeFunctionContext : FunctionContext
    {
        public override string InvocationId => "inv-1";

        public override string FunctionId => "fn-1";

        public override TraceContext TraceContext => throw new NotSupportedException();

        public override BindingContext BindingContext => throw new NotSupportedException();

        public override Microsoft.Azure.Functions.Worker.RetryContext RetryContext => throw new NotSupportedException();

        public override IServiceProvider InstanceServices { get; set; } = null!;

        public override FunctionDefinition FunctionDefinition => throw new NotSupportedException();

        public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object>();

        public override Microsoft.Azure.Functions.Worker.IInvocationFeatures Features => throw new NotSupportedException();
    }
}
