using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LockN.Tests.Readme;

/// <summary>
/// README.md's <c>```sh</c> blocks as one bash script that does what a reader does who pastes them in order:
/// <list type="bullet">
/// <item>the blocks run in order in one bash session with <c>set -euo pipefail</c>, so a variable set in one block is
/// seen by the next, and any failing command (and so, with <c>curl -f</c>, any HTTP error) fails the run;</item>
/// <item>the quick start's block (the first) starts the service: its <c>serve</c> line runs in the background and the
/// run waits for <c>/health/ready</c>; its <c>dotnet test</c> line is not run (this test is part of it);</item>
/// <item>a block right after <see cref="RestartMarker"/> restarts the service: the service started before is
/// stopped, the block runs in the background (a reader runs it in the service's terminal), and the run waits for
/// <c>/health/ready</c>;</item>
/// <item>every background block runs in its own process group, stopped at the end however the run ends.</item>
/// </list>
/// </summary>
internal static partial class ReadmeScript
{
    public const string RestartMarker = "<!-- readme-test: restarts the server -->";
    public const string ServeLine = "dotnet run --project src/LockN -- serve";

    public sealed record Block(int Line, string Text, bool StartsServer);

    /// <summary>The <c>```sh</c> blocks in order, with the README line each starts on.</summary>
    public static IReadOnlyList<Block> ShellBlocks(string markdown)
    {
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        var blocks = new List<Block>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```sh")
            {
                continue;
            }

            var start = i;
            var text = new StringBuilder();
            for (i++; i < lines.Length && lines[i].Trim() != "```"; i++)
            {
                text.Append(lines[i]).Append('\n');
            }

            var restarts = start > 0 && lines[start - 1].Trim() == RestartMarker;
            blocks.Add(new Block(start + 1, text.ToString(), StartsServer: blocks.Count == 0 || restarts));
        }

        return blocks;
    }

    /// <summary>
    /// Writes the script (and a file per background block) into <paramref name="directory"/> and returns the
    /// script's path. <paramref name="substitute"/> rewrites each block's text first (ports, the built executable).
    /// </summary>
    public static string Write(IReadOnlyList<Block> blocks, string directory, Func<string, string> substitute)
    {
        var script = new StringBuilder(Prelude);
        foreach (var (block, index) in blocks.Select((b, i) => (b, i)))
        {
            var text = substitute(block.Text);
            script.Append(CultureInfo.InvariantCulture, $"\n# README.md line {block.Line}\nreadme_line={block.Line}\nprintf '\\nREADME test: block at line %s, %s s\\n' {block.Line} \"$SECONDS\"\n");
            if (!block.StartsServer)
            {
                script.Append(text);
                continue;
            }

            if (index == 0)
            {
                // The quick start: the serve line is the service; `dotnet test` is what runs this test.
                text = substitute(QuickStartServeLine(block.Text)) + "\n";
            }

            var file = Path.Combine(directory, $"server-{block.Line}.sh");
            File.WriteAllText(file, "set -euo pipefail\n" + text);
            script.Append(CultureInfo.InvariantCulture, $"readme_start_server '{file}' '{Path.Combine(directory, $"server-{block.Line}.log")}'\n");
        }

        script.Append("\necho 'README test: every block ran'\n");
        var path = Path.Combine(directory, "readme.sh");
        File.WriteAllText(path, script.ToString());
        return path;
    }

    private static string QuickStartServeLine(string block)
    {
        var commands = block.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (commands.Length != 2 || !commands[0].StartsWith(ServeLine, StringComparison.Ordinal) || !commands[1].StartsWith("dotnet test", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The quick start should be exactly two commands, `{ServeLine}` and `dotnet test`; it is:\n{block}");
        }

        return TrailingComment().Replace(commands[0], "");
    }

    [GeneratedRegex(@"\s+#.*$")]
    private static partial Regex TrailingComment();

    // README_TEST_URL: the service's address; README_TEST_PIDS: a file of the process groups started, for the test to
    // stop even when this script is killed.
    private const string Prelude = """
        set -Eeuo pipefail
        readme_line=0
        trap 'echo "README test: a command of the block at README.md line $readme_line failed (exit $?): $BASH_COMMAND" >&2' ERR
        readme_server=

        readme_alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]; }

        readme_stop_server() {
          [ -n "$readme_server" ] || return 0
          kill -TERM -- "-$readme_server" 2>/dev/null || true
          wait "$readme_server" 2>/dev/null || true
          local i
          for i in $(seq 1 300); do
            curl -s -o /dev/null --max-time 1 "$README_TEST_URL/health/live" || break
            sleep 0.1
          done
          readme_server=
        }

        readme_start_server() {
          readme_stop_server
          setsid bash "$1" > "$2" 2>&1 < /dev/null &
          readme_server=$!
          echo "$readme_server" >> "$README_TEST_PIDS"
          local i
          for i in $(seq 1 1200); do
            if curl -fs -o /dev/null --max-time 2 "$README_TEST_URL/health/ready"; then return 0; fi
            if ! readme_alive "$readme_server"; then
              echo "README test: the service of the block at README.md line $readme_line exited:" >&2
              tail -n 20 "$2" >&2
              return 1
            fi
            sleep 0.1
          done
          echo "README test: $README_TEST_URL/health/ready did not answer 200 within 120 s" >&2
          return 1
        }

        trap readme_stop_server EXIT

        """;
}
