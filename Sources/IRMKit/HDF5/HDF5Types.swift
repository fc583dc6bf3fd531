import CHDF5

/// The element types irm reads and writes. bfloat16 has no HDF5 type: it is stored as uint16 with
/// the dataset attribute `dtype = "bfloat16"` (see docs/checkpoint-format.md).
public enum HDF5ElementType: Equatable, Sendable, CustomStringConvertible {
    case float16, bfloat16, float32, float64, int32, int64, uint16, string
    /// A type irm does not handle; the payload describes it for error messages.
    case unsupported(String)

    public var description: String {
        switch self {
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float32: "float32"
        case .float64: "float64"
        case .int32: "int32"
        case .int64: "int64"
        case .uint16: "uint16"
        case .string: "string"
        case .unsupported(let what): what
        }
    }

    /// Bytes per element, or nil for strings and unsupported types.
    public var byteWidth: Int? {
        switch self {
        case .float16, .bfloat16, .uint16: 2
        case .float32, .int32: 4
        case .float64, .int64: 8
        case .string, .unsupported: nil
        }
    }
}

/// The attribute that marks a uint16 dataset as holding bfloat16 bit patterns.
public enum HDF5BFloat16Marker {
    public static let attributeName = "dtype"
    public static let attributeValue = "bfloat16"
}

/// A numeric element type with a fixed HDF5 representation.
public protocol HDF5Numeric: Sendable {
    static var hdf5ElementType: HDF5ElementType { get }
    /// The HDF5 type used for this element in memory and in new files. Owned by the library; never
    /// closed by callers.
    static var hdf5TypeID: hid_t { get }
}

extension Float: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .float32 }
    public static var hdf5TypeID: hid_t { irm_H5T_NATIVE_FLOAT() }
}

extension Double: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .float64 }
    public static var hdf5TypeID: hid_t { irm_H5T_NATIVE_DOUBLE() }
}

extension Int32: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .int32 }
    public static var hdf5TypeID: hid_t { irm_H5T_NATIVE_INT32() }
}

extension Int64: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .int64 }
    public static var hdf5TypeID: hid_t { irm_H5T_NATIVE_INT64() }
}

extension UInt16: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .uint16 }
    public static var hdf5TypeID: hid_t { irm_H5T_NATIVE_UINT16() }
}

extension Float16: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .float16 }
    public static var hdf5TypeID: hid_t { HDF5HalfType.id }
}

extension BFloat16: HDF5Numeric {
    public static var hdf5ElementType: HDF5ElementType { .bfloat16 }
    public static var hdf5TypeID: hid_t { irm_H5T_NATIVE_UINT16() }
}

/// IEEE binary16, little-endian, built the way h5py builds it, so that h5py and numpy read our
/// files as `float16` and we read theirs byte for byte.
enum HDF5HalfType {
    static let id: hid_t = {
        HDF5Library.ensureReady()
        let type = H5Tcopy(irm_H5T_IEEE_F32LE())
        _ = H5Tset_fields(type, 15, 10, 5, 0, 10)
        _ = H5Tset_size(type, 2)
        _ = H5Tset_ebias(type, 15)
        return type
    }()
}

/// The value of an attribute, in the shapes irm writes and the shapes h5py writes for Python values.
public enum HDF5AttributeValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case strings([String])
    case ints([Int64])
    case doubles([Double])

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .int(let v): "\(v)"
        case .double(let v): "\(v)"
        case .strings(let v): "\(v)"
        case .ints(let v): "\(v)"
        case .doubles(let v): "\(v)"
        }
    }

    public var stringValue: String? {
        switch self {
        case .string(let s): s
        case .strings(let v) where v.count == 1: v[0]
        default: nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let v): v
        case .ints(let v) where v.count == 1: v[0]
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: Int64(d)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .double(let v): v
        case .doubles(let v) where v.count == 1: v[0]
        case .int(let v): Double(v)
        case .ints(let v) where v.count == 1: Double(v[0])
        default: nil
        }
    }
}

/// Shape and element type of a dataset, read without reading its values.
public struct HDF5DatasetInfo: Equatable, Sendable {
    public let shape: [Int]
    public let elementType: HDF5ElementType
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Values read from a dataset, with their shape (row-major, as HDF5 and numpy store them).
public struct HDF5Array<Element: Sendable>: Sendable {
    public let shape: [Int]
    public let values: [Element]
}
