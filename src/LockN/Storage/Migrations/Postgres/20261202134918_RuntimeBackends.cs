using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace LockN.Storage.Migrations.Postgres
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
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    url = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: false),
                    models = table.Column<string>(type: "character varying(4000)", maxLength: 4000, nullable: false),
                    slots = table.Column<int>(type: "integer", nullable: false),
                    queue_length = table.Column<int>(type: "integer", nullable: false),
                    deadline_seconds = table.Column<double>(type: "double precision", nullable: false),
                    draining = table.Column<bool>(type: "boolean", nullable: false),
                    created_at = table.Column<long>(type: "bigint", nullable: false),
                    updated_at = table.Column<long>(type: "bigint", nullable: false)
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
