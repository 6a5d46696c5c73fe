"""The 34 typed methods: one per Action, keyword-only snake_case arguments, typed results.

Generated from the catalog by ``tools/gen_operations.py``; do not edit by hand (a test
checks that this file is up to date).  Each method maps its arguments to the wire names,
leaves out those given as None, awaits ``self.call(action, params)`` (validation, quotas,
signing and retries all happen there) and parses the body into its model (``_models``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ._models import (
    ActionResult,
    CreatedDeployment,
    CreatedDriver,
    CreatedInstance,
    Deployment,
    DeviceConfig,
    DeviceConfigInput,
    DeviceProvisioning,
    DriverConfig,
    DriverConfigInput,
    DriverVersion,
    EdgeDriver,
    EdgeInstance,
    Gateway,
    HistoricDeployment,
    InstanceDevice,
    InstanceDriver,
    InstanceDriverConfigs,
    ListResult,
    Page,
    PresignedAddress,
    parse_data,
    parse_list,
    parse_page,
)

__all__ = ["OperationsMixin"]


def _params(**wire: Any) -> dict[str, Any]:
    """The wire parameters that were given (None means "not given")."""
    return {name: value for name, value in wire.items() if value is not None}


# The models a struct-list entry may be given as (each has ``to_wire()``).
_ENTRY_MODELS = (DeviceConfig, DeviceConfigInput, DriverConfig, DriverConfigInput)


def _entries(items: Iterable[Any] | None) -> Any:
    """Struct-list entries: models and inputs through ``to_wire()``, anything else as it is.

    Mappings may use wire or snake_case keys (the catalog accepts both); anything that is
    not a list, and any entry that is neither a mapping nor one of the models, is passed on
    for validation to name the parameter (``Configs``, ``Configs.2``) and the rule.
    """
    if items is None or isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        return items
    return [item.to_wire() if isinstance(item, _ENTRY_MODELS) else item for item in items]


class OperationsMixin:
    """One typed method per operation, over ``call`` (provided by ``EdgeClient``)."""

    __slots__ = ()

    async def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``action`` with wire-named ``params``; return the parsed JSON body."""
        raise NotImplementedError

    # --- 2.7 Instance management

    async def create_edge_instance(
        self,
        *,
        name: str,
        tags: str | None = None,
        spec: Literal[10, 20, 30] | None = None,
        iot_instance_id: str | None = None,
    ) -> CreatedInstance:
        """Creates an edge instance.

        ``CreateEdgeInstance`` (2.7.1): 10 QPS per account, mutating.

        Args:
            name: Name of the edge instance. Max 20 chars; uppercase letters, lowercase letters,
                digits, _ and -.
            tags: Tags of the edge instance. Comma-separated key:value pairs (e.g. k1:v1,k2:v2);
                keys: non-empty, unique within the instance, letters only, max 20 chars; values:
                non-empty, letters, digits, _ and -, max 20 chars.
            spec: Specification (edition) of the edge instance. 10: Lite Edition; 20: Standard
                Edition; 30: Pro Edition. One of 10, 20, 30; default 20.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``CreatedInstance``.
        """
        body = await self.call(
            "CreateEdgeInstance",
            _params(
                Name=name,
                Tags=tags,
                Spec=spec,
                IotInstanceId=iot_instance_id,
            ),
        )
        return CreatedInstance.from_dict(body)

    async def delete_edge_instance(
        self,
        *,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Deletes an edge instance.

        ``DeleteEdgeInstance`` (2.7.2): 5 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "DeleteEdgeInstance",
            _params(
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def update_edge_instance(
        self,
        *,
        instance_id: str,
        name: str,
        tags: str | None = None,
        spec: Literal[10, 20, 30] | None = None,
        biz_enable: bool | None = None,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Updates an edge instance.

        ``UpdateEdgeInstance`` (2.7.3): 5 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            name: Name of the edge instance. Max 20 chars; letters, digits, _ and -.
            tags: Tags of the edge instance. Comma-separated key:value pairs (e.g. k1:v1,k2:v2);
                keys: non-empty, unique within the instance, letters only, max 20 chars; values:
                non-empty, letters, digits, _ and -, max 20 chars; not updated if omitted.
            spec: Specification (edition) of the edge instance. 10: Lite Edition; 20: Standard
                Edition; 30: Pro Edition. One of 10, 20, 30; not updated if omitted.
            biz_enable: Whether to enable the edge instance. Not updated if omitted.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "UpdateEdgeInstance",
            _params(
                InstanceId=instance_id,
                Name=name,
                Tags=tags,
                Spec=spec,
                BizEnable=biz_enable,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def get_edge_instance(
        self,
        *,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> EdgeInstance:
        """Queries detailed information about an edge instance.

        ``GetEdgeInstance`` (2.7.4): 10 QPS per account, read-only.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``EdgeInstance``.
        """
        body = await self.call(
            "GetEdgeInstance",
            _params(
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_data(EdgeInstance, body)

    async def query_edge_instance(
        self,
        *,
        current_page: int = 1,
        page_size: int = 10,
        name: str | None = None,
        iot_instance_id: str | None = None,
    ) -> Page[EdgeInstance]:
        """Queries all edge instances that belong to the Alibaba Cloud account (paged).

        ``QueryEdgeInstance`` (2.7.5): 10 QPS per account, read-only, paged (``InstanceList``).

        Args:
            current_page: Number of the page to return. Min 1; values smaller than 1 are treated as
                1.
            page_size: Number of entries per page. Max 30; default 10; values smaller than 1 are
                treated as 10.
            name: Name of the edge instance to filter by.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            One page: ``EdgeInstance`` items plus total, page_size, current_page.
        """
        body = await self.call(
            "QueryEdgeInstance",
            _params(
                CurrentPage=current_page,
                PageSize=page_size,
                Name=name,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_page(EdgeInstance, "InstanceList", body)

    # --- 2.8 Driver management

    async def create_edge_driver(
        self,
        *,
        driver_name: str,
        driver_protocol: Literal["modbus", "opc-ua", "customize"],
        runtime: Literal["nodejs8", "python3", "c"],
        cpu_arch: Literal["ARMv7", "ARMv7-HF", "AArch64", "x86-64", "x86"] | None = None,
        is_built_in: bool | None = None,
        iot_instance_id: str | None = None,
    ) -> CreatedDriver:
        """Creates a driver.

        ``CreateEdgeDriver`` (2.8.1): 10 QPS per account, mutating.

        Args:
            driver_name: Name of the driver. Max 20 chars; letters, digits and _ only; must start
                with a letter.
            driver_protocol: Communications protocol of the driver. modbus: Modbus protocol; opc-ua:
                OPC UA protocol; customize: custom protocol.
            runtime: Programming language of the driver. nodejs8: Node.js v8; python3: Python v3.5;
                c: C.
            cpu_arch: CPU architecture supported by the driver. ARMv7: ARMv7; ARMv7-HF: ARMv7-HF;
                AArch64: AArch64; x86-64: x86-64; x86: x86.
            is_built_in: Whether the driver is a built-in driver.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``CreatedDriver``.
        """
        body = await self.call(
            "CreateEdgeDriver",
            _params(
                DriverName=driver_name,
                DriverProtocol=driver_protocol,
                Runtime=runtime,
                CpuArch=cpu_arch,
                IsBuiltIn=is_built_in,
                IotInstanceId=iot_instance_id,
            ),
        )
        return CreatedDriver.from_dict(body)

    async def delete_edge_driver(
        self,
        *,
        driver_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Deletes a driver.

        ``DeleteEdgeDriver`` (2.8.2): 5 QPS per account, mutating.

        Args:
            driver_id: ID of the driver (Link IoT Edge console > Drivers, or QueryEdgeDriver).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "DeleteEdgeDriver",
            _params(
                DriverId=driver_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def batch_get_edge_driver(
        self,
        *,
        driver_ids: Sequence[str],
        iot_instance_id: str | None = None,
    ) -> ListResult[EdgeDriver]:
        """Queries information about multiple drivers at a time.

        ``BatchGetEdgeDriver`` (2.8.3): 5 QPS per account, read-only.

        Args:
            driver_ids: IDs of the drivers to query. Max 30 driver IDs. At most 30 per call.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``EdgeDriver`` items.
        """
        body = await self.call(
            "BatchGetEdgeDriver",
            _params(
                DriverIds=driver_ids,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_list(EdgeDriver, "DriverList", body)

    async def query_edge_driver(
        self,
        *,
        type: Literal[0, 1],
        current_page: int = 1,
        page_size: int = 10,
        driver_name: str | None = None,
        iot_instance_id: str | None = None,
    ) -> Page[EdgeDriver]:
        """Queries information about drivers by page.

        ``QueryEdgeDriver`` (2.8.4): 5 QPS per account, read-only, paged (``DriverList``).

        Args:
            type: Type of drivers to query. 0: official driver; 1: custom driver.
            current_page: Number of the page to return. Default 1; values smaller than 1 are treated
                as page 1.
            page_size: Number of entries per page. Max 30; default 10; values smaller than 1 give 10
                entries per page.
            driver_name: Driver name to filter by.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            One page: ``EdgeDriver`` items plus total, page_size, current_page.
        """
        body = await self.call(
            "QueryEdgeDriver",
            _params(
                Type=type,
                CurrentPage=current_page,
                PageSize=page_size,
                DriverName=driver_name,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_page(EdgeDriver, "DriverList", body)

    async def create_edge_driver_version(
        self,
        *,
        driver_id: str,
        driver_version: str,
        edge_version: str,
        argument: str | None = None,
        description: str | None = None,
        source_config: str | None = None,
        driver_config: str | None = None,
        config_check_rule: str | None = None,
        container_config: str | None = None,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Creates a driver version.

        ``CreateEdgeDriverVersion`` (2.8.5): 10 QPS per account, mutating.

        Args:
            driver_id: ID of the driver (Link IoT Edge console > Drivers, or QueryEdgeDriver).
            driver_version: Version number of the driver. Unique within the driver; max 64 chars;
                letters, digits, _, - and .
            edge_version: Earliest Link IoT Edge version supported by the driver (driver runs only
                on gateways of this version or later).
            argument: JVM startup parameter.
            description: Description of the driver. Max 256 bytes.
            source_config: Source of the driver code. JSON string:
                {"ossAddress":"http://***/driver_code.zip"}.
            driver_config: Configuration of the driver. JSON string; documented shape
                {"format":"JSON","content":"{}"} but the example is a JSON array of such objects;
                format in KV|JSON|FILE.
            config_check_rule: Rule for verifying configurations when the driver is deployed. JSON
                string: {"deviceConfig":{"required":bool},"driverConfig":{"required":bool}}.
            container_config: Configuration of the container in which the driver runs. JSON string;
                see json_fields.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "CreateEdgeDriverVersion",
            _params(
                DriverId=driver_id,
                DriverVersion=driver_version,
                EdgeVersion=edge_version,
                Argument=argument,
                Description=description,
                SourceConfig=source_config,
                DriverConfig=driver_config,
                ConfigCheckRule=config_check_rule,
                ContainerConfig=container_config,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def delete_edge_driver_version(
        self,
        *,
        driver_id: str,
        driver_version: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Deletes a driver version.

        ``DeleteEdgeDriverVersion`` (2.8.6): 10 QPS per account, mutating.

        Args:
            driver_id: ID of the driver (Link IoT Edge console > Drivers, or QueryEdgeDriver).
            driver_version: Version number of the driver.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "DeleteEdgeDriverVersion",
            _params(
                DriverId=driver_id,
                DriverVersion=driver_version,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def update_edge_driver_version(
        self,
        *,
        driver_id: str,
        driver_version: str,
        edge_version: str,
        description: str | None = None,
        source_config: str | None = None,
        driver_config: str | None = None,
        container_config: str | None = None,
        config_check_rule: str | None = None,
        argument: str | None = None,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Updates a driver version.

        ``UpdateEdgeDriverVersion`` (2.8.7): 10 QPS per account, mutating.

        Args:
            driver_id: ID of the driver (Link IoT Edge console > Drivers, or QueryEdgeDriver).
            driver_version: Version number of the driver version to update.
            edge_version: Earliest Link IoT Edge version supported by the driver (driver runs only
                on gateways of this version or later).
            description: Description of the driver. Max 256 bytes.
            source_config: Source of the driver code. JSON string:
                {"ossAddress":"http://***/driver_code.zip"}.
            driver_config: Configuration of the driver. JSON string; documented shape
                {"format":"JSON","content":"{}"} but the example is a JSON array of such objects;
                format in KV|JSON|FILE.
            container_config: Configuration of the container in which the driver runs. JSON string;
                see json_fields.
            config_check_rule: Rule for verifying configurations when the driver is deployed. JSON
                string: {"deviceConfig":{"required":bool},"driverConfig":{"required":bool}}.
            argument: JVM startup parameter.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "UpdateEdgeDriverVersion",
            _params(
                DriverId=driver_id,
                DriverVersion=driver_version,
                EdgeVersion=edge_version,
                Description=description,
                SourceConfig=source_config,
                DriverConfig=driver_config,
                ContainerConfig=container_config,
                ConfigCheckRule=config_check_rule,
                Argument=argument,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def get_edge_driver_version(
        self,
        *,
        driver_id: str,
        driver_version: str,
        iot_instance_id: str | None = None,
    ) -> DriverVersion:
        """Queries information about a driver version.

        ``GetEdgeDriverVersion`` (2.8.8): 10 QPS per account, read-only.

        Args:
            driver_id: ID of the driver (Link IoT Edge console > Drivers, or QueryEdgeDriver).
            driver_version: Version number of the driver.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``DriverVersion``.
        """
        body = await self.call(
            "GetEdgeDriverVersion",
            _params(
                DriverId=driver_id,
                DriverVersion=driver_version,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_data(DriverVersion, body)

    async def query_edge_driver_version(
        self,
        *,
        driver_id: str,
        current_page: int = 1,
        page_size: int = 10,
        driver_version: str | None = None,
        version_state: Literal[0, 1] | None = None,
        iot_instance_id: str | None = None,
    ) -> Page[DriverVersion]:
        """Queries the versions of a driver by page.

        ``QueryEdgeDriverVersion`` (2.8.9): 10 QPS per account, read-only, paged
        (``DriverVersionList``).

        Args:
            driver_id: ID of the driver (Link IoT Edge console > Drivers, or QueryEdgeDriver).
            current_page: Number of the page to return. Min 1; pages start from page 1.
            page_size: Number of entries per page. 1 to 30; default 10.
            driver_version: Version number of a specific driver version to query.
            version_state: Status of the driver versions to query. 0: query unpublished versions; 1:
                query published versions.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            One page: ``DriverVersion`` items plus total, page_size, current_page.
        """
        body = await self.call(
            "QueryEdgeDriverVersion",
            _params(
                DriverId=driver_id,
                CurrentPage=current_page,
                PageSize=page_size,
                DriverVersion=driver_version,
                VersionState=version_state,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_page(DriverVersion, "DriverVersionList", body)

    async def create_edge_oss_pre_signed_address(
        self,
        *,
        file_name: str,
        resource_id: str,
        resource_version: str,
        type: Literal[
            "DRIVER_VERSION_CONTENT",
            "DRIVER_VERSION_DEFAULT_CONFIG",
            "INSTANCE_DRIVER_VERSION_CONFIG",
        ],
        instance_id: str | None = None,
        iot_instance_id: str | None = None,
    ) -> PresignedAddress:
        """Creates a pre-signed URL for an object that is stored in OSS.

        ``CreateEdgeOssPreSignedAddress`` (2.8.10): 5 QPS per account, mutating.

        Args:
            file_name: Name of the object whose URL is to be obtained. <file name>.<extension>.
            resource_id: ID of the resource (driver ID). Only driver resources are supported: set to
                the driver ID.
            resource_version: Version of the resource (driver version). Only driver resources are
                supported: set to the driver version.
            type: Content type of the object. DRIVER_VERSION_CONTENT: code of a specific driver
                version; DRIVER_VERSION_DEFAULT_CONFIG: default configuration of a specific driver
                version; INSTANCE_DRIVER_VERSION_CONFIG: configuration of a specific driver version
                used in an edge instance.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``PresignedAddress``.
        """
        body = await self.call(
            "CreateEdgeOssPreSignedAddress",
            _params(
                FileName=file_name,
                ResourceId=resource_id,
                ResourceVersion=resource_version,
                Type=type,
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_data(PresignedAddress, body)

    # --- 2.9 Instance gateway management

    async def bind_gateway_to_edge_instance(
        self,
        *,
        instance_id: str,
        product_key: str | None = None,
        device_name: str | None = None,
        iot_id: str | None = None,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Binds a gateway to an edge instance.

        ``BindGatewayToEdgeInstance`` (2.9.1): 10 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            product_key: ProductKey of the product to which the gateway belongs. If specified,
                DeviceName must also be specified.
            device_name: Name of the gateway device. If specified, ProductKey must also be
                specified.
            iot_id: ID of the gateway in IoT Platform. Alternative to ProductKey+DeviceName; if both
                forms are given only IotId takes effect.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "BindGatewayToEdgeInstance",
            _params(
                InstanceId=instance_id,
                ProductKey=product_key,
                DeviceName=device_name,
                IotId=iot_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def query_edge_instance_gateway(
        self,
        *,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ListResult[Gateway]:
        """Queries the gateways that are bound to an edge instance.

        ``QueryEdgeInstanceGateway`` (2.9.2): 10 QPS per account, read-only.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``Gateway`` items.
        """
        body = await self.call(
            "QueryEdgeInstanceGateway",
            _params(
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_list(Gateway, "GatewayList", body)

    # --- 2.10 Instance driver management

    async def bind_driver_to_edge_instance(
        self,
        *,
        driver_id: str,
        instance_id: str,
        driver_version: str | None = None,
        order_id: str | None = None,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Binds a driver to an edge instance.

        ``BindDriverToEdgeInstance`` (2.10.1): 5 QPS per account, mutating.

        Args:
            driver_id: ID of the driver to bind.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            driver_version: Version of the driver to bind. Defaults to the latest version of the
                driver.
            order_id: ID of the order. Required for third-party drivers purchased from the IoT
                marketplace; not needed for official or self-developed drivers.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "BindDriverToEdgeInstance",
            _params(
                DriverId=driver_id,
                InstanceId=instance_id,
                DriverVersion=driver_version,
                OrderId=order_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def unbind_driver_from_edge_instance(
        self,
        *,
        driver_id: str,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Unbinds a driver from an edge instance.

        ``UnbindDriverFromEdgeInstance`` (2.10.2): 5 QPS per account, mutating.

        Args:
            driver_id: ID of the driver to unbind.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "UnbindDriverFromEdgeInstance",
            _params(
                DriverId=driver_id,
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def query_edge_instance_driver(
        self,
        *,
        instance_id: str,
        current_page: int = 1,
        page_size: int = 10,
        iot_instance_id: str | None = None,
    ) -> Page[InstanceDriver]:
        """Queries the drivers that are bound to an edge instance.

        ``QueryEdgeInstanceDriver`` (2.10.3): 10 QPS per account, read-only, paged (``DriverList``).

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            current_page: Number of the page to return. Min 1; pages start from page 1.
            page_size: Number of entries per page. 1 to 30; default 10.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            One page: ``InstanceDriver`` items plus total, page_size, current_page.
        """
        body = await self.call(
            "QueryEdgeInstanceDriver",
            _params(
                InstanceId=instance_id,
                CurrentPage=current_page,
                PageSize=page_size,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_page(InstanceDriver, "DriverList", body)

    async def set_edge_instance_driver_configs(
        self,
        *,
        configs: Sequence[DriverConfigInput | DriverConfig | Mapping[str, str]],
        driver_id: str,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Configures a driver that is bound to an edge instance.

        ``SetEdgeInstanceDriverConfigs`` (2.10.4): 10 QPS per account, mutating.

        Args:
            configs: Content of the configuration. Each entry: content, format, key (optional).
                format: one of KV, JSON, FILE.
            driver_id: ID of the driver bound to the instance.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "SetEdgeInstanceDriverConfigs",
            _params(
                Configs=_entries(configs),
                DriverId=driver_id,
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def clear_edge_instance_driver_configs(
        self,
        *,
        driver_id: str,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Deletes the configurations of a driver that is bound to an edge instance.

        ``ClearEdgeInstanceDriverConfigs`` (2.10.5): 10 QPS per account, mutating.

        Args:
            driver_id: ID of the driver whose configurations are deleted.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "ClearEdgeInstanceDriverConfigs",
            _params(
                DriverId=driver_id,
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def batch_get_edge_instance_driver_configs(
        self,
        *,
        driver_ids: Sequence[str],
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ListResult[InstanceDriverConfigs]:
        """Queries the configuration information of one or more drivers that are bound to an edge
        instance.

        ``BatchGetEdgeInstanceDriverConfigs`` (2.10.6): 10 QPS per account, read-only.

        Args:
            driver_ids: IDs of the drivers to query. Max 20 driver IDs. At most 20 per call.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``InstanceDriverConfigs`` items.
        """
        body = await self.call(
            "BatchGetEdgeInstanceDriverConfigs",
            _params(
                DriverIds=driver_ids,
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_list(InstanceDriverConfigs, "DriverConfigList", body)

    # --- 2.11 Instance device management

    async def batch_bind_device_to_edge_instance_with_driver(
        self,
        *,
        driver_id: str,
        instance_id: str,
        iot_ids: Sequence[str],
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Binds multiple devices to an edge instance and configures a driver for the devices.

        ``BatchBindDeviceToEdgeInstanceWithDriver`` (2.11.1): 5 QPS per account, mutating.

        Args:
            driver_id: ID of the driver to configure for the devices.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_ids: IDs of the devices (IotId). Obtain via QueryDevice. Max 20 device IDs. At most
                20 per call.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            _params(
                DriverId=driver_id,
                InstanceId=instance_id,
                IotIds=iot_ids,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def batch_unbind_device_from_edge_instance(
        self,
        *,
        instance_id: str,
        iot_ids: Sequence[str],
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Unbinds multiple devices from an edge instance.

        ``BatchUnbindDeviceFromEdgeInstance`` (2.11.2): 5 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_ids: IDs of the devices (IotId). Obtain via QueryDevice. Max 20 device IDs. At most
                20 per call.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "BatchUnbindDeviceFromEdgeInstance",
            _params(
                InstanceId=instance_id,
                IotIds=iot_ids,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def query_edge_instance_device(
        self,
        *,
        instance_id: str,
        current_page: int = 1,
        page_size: int = 10,
        iot_instance_id: str | None = None,
    ) -> Page[InstanceDevice]:
        """Queries the devices that are bound to an edge instance.

        ``QueryEdgeInstanceDevice`` (2.11.3): 10 QPS per account, read-only, paged (``DeviceList``).

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            current_page: Number of the page to return. Min 1; pages start from page 1.
            page_size: Number of entries per page. 1 to 30; default 10.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            One page: ``InstanceDevice`` items plus total, page_size, current_page.
        """
        body = await self.call(
            "QueryEdgeInstanceDevice",
            _params(
                InstanceId=instance_id,
                CurrentPage=current_page,
                PageSize=page_size,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_page(InstanceDevice, "DeviceList", body)

    async def batch_set_edge_instance_device_config(
        self,
        *,
        device_configs: Sequence[DeviceConfigInput | DeviceConfig | Mapping[str, str]],
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Configures multiple devices that are bound to an edge instance.

        ``BatchSetEdgeInstanceDeviceConfig`` (2.11.4): 5 QPS per account, mutating.

        Args:
            device_configs: Content of the device configuration. Each entry: content, iot_id. At
                most 20 per call.
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "BatchSetEdgeInstanceDeviceConfig",
            _params(
                DeviceConfigs=_entries(device_configs),
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def batch_clear_edge_instance_device_config(
        self,
        *,
        instance_id: str,
        iot_ids: Sequence[str],
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Deletes the configurations of one or more devices that are bound to an edge instance.

        ``BatchClearEdgeInstanceDeviceConfig`` (2.11.5): 5 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_ids: IDs of the devices (IotId). Max 20 device IDs; obtain via
                QueryEdgeInstanceDevice. At most 20 per call.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "BatchClearEdgeInstanceDeviceConfig",
            _params(
                InstanceId=instance_id,
                IotIds=iot_ids,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def batch_get_edge_instance_device_config(
        self,
        *,
        instance_id: str,
        iot_ids: Sequence[str],
        iot_instance_id: str | None = None,
    ) -> ListResult[DeviceConfig]:
        """Queries the configuration information of one or more devices that are bound to an edge
        instance.

        ``BatchGetEdgeInstanceDeviceConfig`` (2.11.6): 5 QPS per account, read-only.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_ids: IDs of the devices (IotId). Max 20 device IDs; obtain via
                QueryEdgeInstanceDevice. At most 20 per call.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``DeviceConfig`` items.
        """
        body = await self.call(
            "BatchGetEdgeInstanceDeviceConfig",
            _params(
                InstanceId=instance_id,
                IotIds=iot_ids,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_list(DeviceConfig, "DeviceConfigList", body)

    # --- 2.12 Instance deployment

    async def create_edge_instance_deployment(
        self,
        *,
        instance_id: str,
        type: Literal["deploy", "reset"],
        iot_instance_id: str | None = None,
    ) -> CreatedDeployment:
        """Creates a deployment task for an edge instance.

        ``CreateEdgeInstanceDeployment`` (2.12.1): 5 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            type: Type of the deployment task. deploy: deploys the edge instance; reset: resets the
                edge instance.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``CreatedDeployment``.
        """
        body = await self.call(
            "CreateEdgeInstanceDeployment",
            _params(
                InstanceId=instance_id,
                Type=type,
                IotInstanceId=iot_instance_id,
            ),
        )
        return CreatedDeployment.from_dict(body)

    async def close_edge_instance_deployment(
        self,
        *,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> ActionResult:
        """Stops the deployment tasks of an edge instance.

        ``CloseEdgeInstanceDeployment`` (2.12.2): 5 QPS per account, mutating.

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``ActionResult`` (the request ID).
        """
        body = await self.call(
            "CloseEdgeInstanceDeployment",
            _params(
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return ActionResult.from_dict(body)

    async def get_edge_instance_deployment(
        self,
        *,
        deployment_id: str,
        instance_id: str,
        iot_instance_id: str | None = None,
    ) -> Deployment:
        """Queries detailed information about a deployment task of an edge instance.

        ``GetEdgeInstanceDeployment`` (2.12.3): 5 QPS per account, read-only.

        Args:
            deployment_id: ID of the deployment task (obtain via
                QueryEdgeInstanceHistoricDeployment).
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            ``Deployment``.
        """
        body = await self.call(
            "GetEdgeInstanceDeployment",
            _params(
                DeploymentId=deployment_id,
                InstanceId=instance_id,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_data(Deployment, body)

    async def query_edge_instance_historic_deployment(
        self,
        *,
        instance_id: str,
        current_page: int = 1,
        page_size: int = 10,
        start_time: int | datetime | None = None,
        end_time: int | datetime | None = None,
        iot_instance_id: str | None = None,
    ) -> Page[HistoricDeployment]:
        """Queries the deployment task records of an edge instance.

        ``QueryEdgeInstanceHistoricDeployment`` (2.12.4): 10 QPS per account, read-only, paged
        (``DeploymentList``).

        Args:
            instance_id: ID of the edge instance (Link IoT Edge console > Edge Instances, or
                QueryEdgeInstance).
            current_page: Number of the page to return. Min 1; pages start from page 1.
            page_size: Number of entries per page. 1 to 30; default 10.
            start_time: Beginning of the time range to query. UNIX timestamp in ms; if neither
                StartTime nor EndTime is given, all records are queried. Milliseconds since the
                epoch, or an aware datetime.
            end_time: End of the time range to query. UNIX timestamp in ms; if neither StartTime nor
                EndTime is given, all records are queried. Milliseconds since the epoch, or an aware
                datetime.
            iot_instance_id: ID of the IoT Platform service instance. Not required for the public
                instance; required for Enterprise Edition (purchased) instances.

        Returns:
            One page: ``HistoricDeployment`` items plus total, page_size, current_page.
        """
        body = await self.call(
            "QueryEdgeInstanceHistoricDeployment",
            _params(
                InstanceId=instance_id,
                CurrentPage=current_page,
                PageSize=page_size,
                StartTime=start_time,
                EndTime=end_time,
                IotInstanceId=iot_instance_id,
            ),
        )
        return parse_page(HistoricDeployment, "DeploymentList", body)

    # --- IoT Platform

    async def query_device_provisioning(
        self,
        *,
        product_key: str,
        device_name: str,
    ) -> DeviceProvisioning:
        """Queries the provisioning (distribution) result of a specified device.

        ``QueryDeviceProvisioning`` (IoT Platform): 50 QPS per account, read-only.

        Args:
            product_key: ProductKey of the product to which the device belongs.
            device_name: Name of the device.

        Returns:
            ``DeviceProvisioning``.
        """
        body = await self.call(
            "QueryDeviceProvisioning",
            _params(
                ProductKey=product_key,
                DeviceName=device_name,
            ),
        )
        return parse_data(DeviceProvisioning, body)
