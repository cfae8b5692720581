using Klaviyo.Functions;
using Klaviyo.Functions.Local;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;

// `--local`: the same ingest, transform and delivery in one process, without the Functions host (README: Run locally).
if (LocalHost.IsRequested(args))
{
    return await LocalHost.RunAsync(args);
}

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.UseMiddleware<Klaviyo.Functions.Ingest.HttpProblemWorkerMiddleware>();
builder.Services.AddKlaviyoRelay(builder.Configuration);
builder.Build().Run();
return 0;
