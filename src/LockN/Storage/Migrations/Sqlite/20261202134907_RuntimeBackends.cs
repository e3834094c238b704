using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace LockN.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class RuntimeBackends : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "backends",
                columns: table => new
                {
                    name = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    url = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: false),
                    models = table.Column<string>(type: "TEXT", maxLength: 4000, nullable: false),
                    slots = table.Column<int>(type: "INTEGER", nullable: false),
                    queue_length = table.Column<int>(type: "INTEGER", nullable: false),
                    deadline_seconds = table.Column<double>(type: "REAL", nullable: false),
                    draining = table.Column<bool>(type: "INTEGER", nullable: false),
                    created_at = table.Column<long>(type: "INTEGER", nullable: false),
                    updated_at = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_backends", x => x.name);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "backends");
        }
    }
}
