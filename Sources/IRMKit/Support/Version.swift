/// The version of irm recorded in every file it writes.
public enum IRMVersion {
    public static let string = "0.1.0"
}
