using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// The one door through which tests look at a planned transform result: every request body a test sees passes
/// through <see cref="Requests"/>, which checks it against Klaviyo's OpenAPI schema (<see cref="KlaviyoSchemas"/>).
/// </summary>
internal static class TransformAssertions
{
    public const string ProfileId = "01PROFILE";

    /// <summary>Builds every step of a <see cref="TransformResult.Planned"/> (later steps with <paramref name="profileId"/>); fails otherwise.</summary>
    public static IReadOnlyList<KlaviyoRequest> Requests(TransformResult result, string profileId = ProfileId)
    {
        var planned = Planned(result);
        var requests = new List<KlaviyoRequest>(planned.Plan.Steps.Count);
        foreach (var step in planned.Plan.Steps)
        {
            var request = step.NeedsProfileId ? step.Build(profileId) : step.Build();
            Assert.AreEqual(step.Endpoint, request.Endpoint, "a step builds a request for its own endpoint");
            CheckBody(request);
            requests.Add(request);
        }
        return requests;
    }

    /// <summary>The single request of a one-step plan.</summary>
    public static KlaviyoRequest Single(TransformResult result, KlaviyoEndpoint endpoint)
    {
        var requests = Requests(result);
        Assert.HasCount(1, requests);
        Assert.AreEqual(endpoint, requests[0].Endpoint);
        return requests[0];
    }

    /// <summary>The body of a request, parsed.</summary>
    public static JsonNode Body(KlaviyoRequest request) => JsonNode.Parse(request.Body.Span)!;

    /// <summary><c>data.attributes</c> of a request body.</summary>
    public static JsonObject Attributes(KlaviyoRequest request) => Body(request)["data"]!["attributes"]!.AsObject();

    public static TransformResult.Planned Planned(TransformResult result)
    {
        if (result is TransformResult.Planned planned)
        {
            return planned;
        }
        Assert.Fail($"expected a plan, got {result}");
        throw new UnreachableException();
    }

    public static TransformResult.Invalid Invalid(TransformResult result)
    {
        Assert.IsInstanceOfType<TransformResult.Invalid>(result, $"expected Invalid, got {result}");
        return (TransformResult.Invalid)result;
    }

    private static void CheckBody(KlaviyoRequest request)
    {
        // Every body is one JSON object in UTF-8 that Klaviyo's OpenAPI schema for its endpoint accepts.
        var text = Encoding.UTF8.GetString(request.Body.Span);
        using var document = JsonDocument.Parse(text);
        Assert.AreEqual(JsonValueKind.Object, document.RootElement.ValueKind, $"{request.Path}: body is not a JSON object");
        KlaviyoSchemas.AssertValid(request);
    }

    private sealed class UnreachableException : Exception;
}
