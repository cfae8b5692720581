using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>The built relay app started in local mode (<c>dotnet Klaviyo.Functions.dll --local</c>) as a child process
/// on a free loopback port. Shared by the end-to-end tests and the load runner (linked there).</summary>
internal sealed class LocalAppProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private LocalAppProcess(Process process, string baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
    }

    public string BaseUrl { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Resident memory of the app now (Linux <c>VmRSS</c>), in MB.</summary>
    public double ResidentMegabytes()
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
    }

    /// <summary>CPU time the app has used so far (Linux <c>/proc/&lt;pid&gt;/stat</c> utime + stime), in seconds.</summary>
    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{_process.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here; 100 ticks a second.
        return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary><c>kill -9</c>: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    public string Output
    {
        get { lock (_output) { return _output.ToString(); } }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The built app: <c>KLAVIYO_APP_DLL</c> when set (a benchmark comparing two builds), else this repository's.</summary>
    public static string FindAppDll()
    {
        if (Environment.GetEnvironmentVariable("KLAVIYO_APP_DLL") is { Length: > 0 } dll)
        {
            return dll;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var own = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
            foreach (var config in new[] { own, own == "Release" ? "Debug" : "Release" })
            {
                var candidate = Path.Combine(dir.FullName, "Klaviyo.Functions", "bin", config, "net10.0", "Klaviyo.Functions.dll");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        throw new FileNotFoundException("Build Klaviyo.Functions first (dotnet build -c Release).");
    }

    /// <summary>Starts the app with <paramref name="settings"/> as environment variables (<c>Klaviyo__PrivateApiKey</c>, …)
    /// and waits until <c>/api/health</c> answers.</summary>
    /// <param name="listenHost">The address to listen on (<c>0.0.0.0</c> to listen beyond loopback); health is polled on 127.0.0.1.</param>
    public static async Task<LocalAppProcess> StartAsync(IDictionary<string, string> settings, TimeSpan? startTimeout = null, string listenHost = "127.0.0.1")
    {
        var port = FreePort();
        var baseUrl = $"http://127.0.0.1:{port}";
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(FindAppDll());
        info.ArgumentList.Add("--local");
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://{listenHost}:{port}");
        // Each app its own database unless the test names one: the queue is durable, so a shared relay.db would carry
        // one test's backlog and duplicate-detection window into the next.
        info.Environment["Local__DatabasePath"] = Path.Combine(Path.GetTempPath(), $"klaviyo-relay-test-{Guid.NewGuid():N}.db");
        foreach (var (key, value) in settings)
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info)!;
        var app = new LocalAppProcess(process, baseUrl);
        process.OutputDataReceived += (_, e) => app.Append(e.Data);
        process.ErrorDataReceived += (_, e) => app.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + (startTimeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                process.WaitForExit(); // the output read to its end
                throw new InvalidOperationException("The local app exited at start-up:\n" + app.Output);
            }
            try
            {
                using var response = await http.GetAsync(baseUrl + "/api/health");
                if (response.IsSuccessStatusCode)
                {
                    return app;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        await app.DisposeAsync();
        throw new TimeoutException("The local app did not answer /api/health:\n" + app.Output);
    }

    /// <summary>Polls <c>GET /api/health</c> until its <c>backlog</c> meets <paramref name="condition"/>; throws with the
    /// last answer when <paramref name="patience"/> runs out (the load runner links this file too, without MSTest).</summary>
    public async Task<JsonNode> WaitForBacklogAsync(Func<JsonNode, bool> condition, TimeSpan patience, CancellationToken cancellationToken)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            var health = JsonNode.Parse(await http.GetStringAsync(BaseUrl + "/api/health", cancellationToken))!;
            if (condition(health["backlog"]!))
            {
                return health;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("health never reported the expected backlog: " + health.ToJsonString());
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Asks the app to stop as Ctrl+C would (SIGINT) and waits for it to exit. A process started from a
    /// background job of a non-interactive shell inherits SIGINT ignored; it is sent SIGTERM, the same graceful stop.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            Signal(_process.Id, IgnoresSigint(_process.Id) ? 15 : 2);
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    internal static bool IgnoresSigint(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
            return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (2 - 1))) != 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Signal(int pid, int signal);
}
