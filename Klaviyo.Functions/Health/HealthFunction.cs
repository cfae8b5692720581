using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Health;

/// <summary><c>GET /api/health</c>: 200 when every configuration check passes, otherwise 503. Anonymous so that
/// probes need no key; the body names checks and settings, never values.</summary>
public sealed class HealthFunction
{
    private readonly ConfigurationHealth health;

    /// <summary>The worker activates function classes through their public constructors; the collaborators are
    /// internal, so it resolves them here.</summary>
    public HealthFunction(IServiceProvider services)
        : this(services.GetRequiredService<ConfigurationHealth>())
    {
    }

    internal HealthFunction(ConfigurationHealth health) => this.health = health;

    public const string Name = "Health";

    public const string Route = "health";

    [Function(Name)]
    public IActionResult Run([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Route)] HttpRequest request)
    {
        var (status, body) = Describe(health.Check());
        return new JsonResult(body) { StatusCode = status };
    }

    /// <summary>The status and body for a set of checks (shared with local mode's <c>/api/health</c>).</summary>
    internal static (int Status, object Body) Describe(IReadOnlyList<HealthCheckResult> checks)
    {
        var healthy = checks.All(c => c.Passed);
        var body = new
        {
            status = healthy ? "healthy" : "unhealthy",
            checks = checks.Select(c => new
            {
                name = c.Name,
                status = c.Passed ? "pass" : "fail",
                settings = c.Settings,
            }),
        };
        return (healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable, body);
    }
}
