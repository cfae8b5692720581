using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Ingest;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>The local-mode pipeline step that turns the framework's bare error answers into problem documents.</summary>
[TestClass]
public sealed class HttpProblemAnswersTests
{
    [TestMethod]
    public async Task UnexpectedException_Answers500ProblemWithoutTheExceptionText()
    {
        var (status, contentType, body) = await RunAsync(_ => throw new InvalidOperationException("pk_live_SECRET in a message"));

        Assert.AreEqual(500, status);
        Assert.AreEqual("application/problem+json", contentType);
        Assert.AreEqual(500, body.GetProperty("status").GetInt32());
        Assert.DoesNotContain("SECRET", body.GetRawText());
    }

    [TestMethod]
    public async Task BadHttpRequestException_AnswersItsOwnStatusAsProblem()
    {
        var (status, contentType, body) = await RunAsync(_ => throw new BadHttpRequestException("Bad chunk size data.\r\nX-Injected: 1", 400));

        Assert.AreEqual(400, status);
        Assert.AreEqual("application/problem+json", contentType);
        Assert.Contains("Bad chunk size data.\\r\\nX-Injected", body.GetProperty("detail").GetString()!);
    }

    [TestMethod]
    [DataRow(404)]
    [DataRow(405)]
    [DataRow(415)]
    public async Task EmptyErrorAnswer_BecomesProblemWithSameStatus(int code)
    {
        var (status, contentType, body) = await RunAsync(context =>
        {
            context.Response.StatusCode = code;
            return Task.CompletedTask;
        });

        Assert.AreEqual(code, status);
        Assert.AreEqual("application/problem+json", contentType);
        Assert.AreEqual(code, body.GetProperty("status").GetInt32());
    }

    [TestMethod]
    public async Task AnswerWithBody_IsLeftAlone()
    {
        var (status, contentType, body) = await RunAsync(async context =>
        {
            context.Response.StatusCode = 400;
            context.Response.ContentType = "application/problem+json";
            await context.Response.WriteAsync("""{"status":400,"mine":true}""", context.RequestAborted);
        });

        Assert.AreEqual(400, status);
        Assert.AreEqual("application/problem+json", contentType);
        Assert.IsTrue(body.GetProperty("mine").GetBoolean());
    }

    [TestMethod]
    public async Task HeadersOverRelayLimit_Answer431Problem()
    {
        var (status, contentType, _) = await RunAsync(_ => Task.CompletedTask, context => context.Request.Headers["X-Big"] = new string('h', HttpProblemAnswers.MaxHeaderBytes + 1));

        Assert.AreEqual(431, status);
        Assert.AreEqual("application/problem+json", contentType);
    }

    private static async Task<(int Status, string? ContentType, JsonElement Body)> RunAsync(RequestDelegate endpoint, Action<HttpContext>? arrange = null)
    {
        var services = new ServiceCollection().AddLogging().BuildServiceProvider();
        var app = new ApplicationBuilder(services);
        app.UseProblemAnswers();
        app.Run(endpoint);
        var pipeline = app.Build();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Request.Method = "POST";
        context.Request.Path = "/api/events";
        arrange?.Invoke(context);
        var output = new MemoryStream();
        context.Response.Body = output;

        await pipeline(context);

        using var document = JsonDocument.Parse(Encoding.UTF8.GetString(output.ToArray()));
        return (context.Response.StatusCode, context.Response.ContentType, document.RootElement.Clone());
    }
}
