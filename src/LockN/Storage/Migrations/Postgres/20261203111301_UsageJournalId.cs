using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace LockN.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class UsageJournalId : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "journal_id",
                table: "usage",
                type: "uuid",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_usage_journal_id",
                table: "usage",
                column: "journal_id",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_usage_journal_id",
                table: "usage");

            migrationBuilder.DropColumn(
                name: "journal_id",
                table: "usage");
        }
    }
}
