using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>The standard mix `../shared/bench/event-mix.jsonl` and the settings its README names.</summary>
internal static class EventMix
{
    public static string FindFile()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "bench", "event-mix.jsonl");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException("shared/bench/event-mix.jsonl not found above " + AppContext.BaseDirectory);
    }

    public static byte[][] Load(string? path = null) =>
        File.ReadLines(path ?? FindFile()).Where(l => l.Length > 0).Select(System.Text.Encoding.UTF8.GetBytes).ToArray();

    public static KlaviyoOptions Settings() => new()
    {
        PrivateApiKey = "pk_bench",
        ListId = "LIST1",
        SendPageAsTrack = true,
        AdditionalPageInfo = true,
    };
}
