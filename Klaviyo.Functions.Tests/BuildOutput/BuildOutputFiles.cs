using System.Text.Json.Nodes;

namespace Klaviyo.Functions.Tests.BuildOutput;

/// <summary>The Functions app's real build output (<c>Klaviyo.Functions/bin/&lt;configuration&gt;/net10.0/</c>), the
/// files the Functions host reads at start-up. The test project references the app, so it is built first.</summary>
internal static class BuildOutputFiles
{
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Klaviyo.Functions.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"Klaviyo.Functions.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>The app's output folder for the configuration this test assembly was built in.</summary>
    public static string Directory()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var dir = Path.Combine(RepoRoot(), "Klaviyo.Functions", "bin", configuration, "net10.0");
        Assert.IsTrue(File.Exists(Path.Combine(dir, "functions.metadata")), $"{dir}/functions.metadata is missing: build Klaviyo.Functions -c {configuration} first");
        return dir;
    }

    public static JsonArray FunctionsMetadata() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Directory(), "functions.metadata")))!.AsArray();

    public static JsonArray Extensions() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Directory(), "extensions.json")))!["extensions"]!.AsArray();
}
