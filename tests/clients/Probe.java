// What DBeaver and Metabase ask of a database through pgjdbc: its schemas, tables and
// columns (DatabaseMetaData), then a prepared query. Run by tests/it/serve_clients.rs:
//   java -cp /usr/share/java/postgresql.jar tests/clients/Probe.java JDBC_URL USER PASSWORD
import java.sql.*;

public class Probe {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("PRODUCT " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) System.out.println("SCHEMA " + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = md.getTables("cloudflare", null, "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) {
                    System.out.println("TABLE " + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
                }
            }
            try (ResultSet rs = md.getColumns("cloudflare", "user", "tokens", "%")) {
                while (rs.next()) {
                    System.out.println("COLUMN " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
                }
            }
            String id;
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT 1")) {
                rs.next();
                id = rs.getString(1);
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, name, expires_on FROM cloudflare.user.tokens WHERE id = ?")) {
                ps.setString(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        System.out.println("ROW " + rs.getString("id") + " " + rs.getString("name"));
                    }
                }
            }
        }
    }
}
